from ecogram.cli import main

raise SystemExit(main())
