"""Locust mixes for ecogram: the storefront (image delivery) and the staff (back office).

    .venv/bin/locust -f bench/locustfile.py --headless -u 20 -r 5 -t 1m \\
        --host http://127.0.0.1:8080

Environment (see bench/README.md, "Delivery"):
- ECOGRAM_BENCH_EMAIL / ECOGRAM_BENCH_PASSWORD: a reviewer or admin account. StaffUser logs in
  with it; without it StaffUser stops at once and only the storefront mix runs.
- ECOGRAM_BENCH_PREPARE=1: before the run, import bench/images/*.jpg as BENCH-1..4 and approve
  them with that account (a rerun finds them as duplicates and goes on).
- ECOGRAM_BENCH_CODES: product codes the storefront asks for (default BENCH-1,...,BENCH-4).
- ECOGRAM_BENCH_MAX_FAILURE_RATIO: exit status 1 above this share of failed requests (0.01).

Cold sizes ask any width 160-1200: run the server with ECOGRAM_ALLOWED_SIZES='*' (or sign URLs),
else they are refused with 400 and counted as failures.
"""

from __future__ import annotations

import logging
import os
import random
import uuid
from pathlib import Path

import requests
from locust import HttpUser, between, events, task
from locust.exception import StopUser

IMAGES = Path(__file__).resolve().parent / "images"
PHOTOS = ("photo1.jpg", "photo2.jpg", "product.jpg", "noise.jpg")
CODES = [c.strip() for c in os.environ.get(
    "ECOGRAM_BENCH_CODES", ",".join(f"BENCH-{i}" for i in range(1, 5))).split(",") if c.strip()]
WARM_WIDTHS = (400, 800)
EMAIL = os.environ.get("ECOGRAM_BENCH_EMAIL", "")
PASSWORD = os.environ.get("ECOGRAM_BENCH_PASSWORD", "")
# locust logs at INFO; libvips would add a line per generated image.
logging.getLogger("pyvips").setLevel(logging.WARNING)


def login(post, email: str, password: str) -> dict[str, str]:
    """Bearer header for the account; `post` is requests' or locust's client.post."""
    resp = post("/api/v1/auth/login", json={"email": email, "password": password})
    resp.raise_for_status()
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


def image_id(report: object) -> int | None:
    """The image id of the first file of an import report (API.md: ``items[].image_id``, set
    for an accepted file and for a duplicate of an existing record)."""
    items = report.get("items", []) if isinstance(report, dict) else []
    return next((line["image_id"] for line in items if isinstance(line.get("image_id"), int)),
                None)


def generated_jpeg(side: int = 1000) -> bytes:
    """A product-like photo no one has imported before: a plain ground, a block, light noise."""
    import pyvips

    ground = [random.randint(180, 255) for _ in range(3)]
    image = pyvips.Image.black(side, side, bands=3) + ground
    image = image.draw_rect([random.randint(0, 200) for _ in range(3)],
                            random.randint(0, side // 2), random.randint(0, side // 2),
                            random.randint(side // 8, side // 2),
                            random.randint(side // 8, side // 2), fill=True)
    # The noise makes every file's bytes (and so its sha256) unique.
    image = (image + pyvips.Image.gaussnoise(side, side, sigma=6)).cast("uchar")
    return image.jpegsave_buffer(Q=88)


@events.test_start.add_listener
def prepare(environment, **_kwargs) -> None:
    """With ECOGRAM_BENCH_PREPARE=1: import and approve the four bench photos first."""
    if os.environ.get("ECOGRAM_BENCH_PREPARE") != "1":
        return
    if not (EMAIL and PASSWORD):
        raise SystemExit("ECOGRAM_BENCH_PREPARE=1 needs ECOGRAM_BENCH_EMAIL and _PASSWORD")
    base = environment.host.rstrip("/")
    with requests.Session() as http:
        headers = login(lambda path, **kw: http.post(base + path, timeout=30, **kw),
                        EMAIL, PASSWORD)
        for photo, code in zip(PHOTOS, CODES, strict=False):
            with (IMAGES / photo).open("rb") as handle:
                resp = http.post(f"{base}/api/v1/images", headers=headers, timeout=120,
                                 data={"code": code},
                                 files={"file": (photo, handle, "image/jpeg")})
            found = image_id(resp.json())
            if found is None:
                raise SystemExit(f"import of {photo} answered {resp.status_code}: "
                                 f"{resp.text[:300]}")
            # 409: approved already.
            http.post(f"{base}/api/v1/images/{found}/approve", headers=headers, timeout=30)


@events.quitting.add_listener
def exit_status(environment, **_kwargs) -> None:
    limit = float(os.environ.get("ECOGRAM_BENCH_MAX_FAILURE_RATIO", "0.01"))
    stats = environment.stats.total
    if stats.num_requests and stats.fail_ratio > limit:
        print(f"failure ratio {stats.fail_ratio:.2%} is above {limit:.2%}")
        environment.process_exit_code = 1


class StorefrontUser(HttpUser):
    """Shoppers' browsers: mostly cached sizes, some new sizes, the placeholders."""

    weight = 10
    wait_time = between(0.05, 0.5)

    @task(80)
    def warm_image(self) -> None:
        code, width = random.choice(CODES), random.choice(WARM_WIDTHS)
        self.client.get(f"/img/{code}?w={width}&fmt=webp&q=80", name="/img [warm]")

    @task(10)
    def cold_size(self) -> None:
        code, width = random.choice(CODES), random.randint(160, 1200)
        self.client.get(f"/img/{code}?w={width}&fmt=webp&q=80", name="/img [cold size]")

    @task(10)
    def placeholder(self) -> None:
        self.client.get(f"/img/{random.choice(CODES)}/placeholder", name="/img/[code]/placeholder")


class StaffUser(HttpUser):
    """The back office: browse the list, import a new photo, approve it."""

    weight = 1
    wait_time = between(1, 3)

    def on_start(self) -> None:
        if not (EMAIL and PASSWORD):
            print("StaffUser: set ECOGRAM_BENCH_EMAIL and ECOGRAM_BENCH_PASSWORD (a reviewer or "
                  "admin) to run the staff mix")
            raise StopUser()
        self.auth = login(self.client.post, EMAIL, PASSWORD)

    @task(6)
    def list_images(self) -> None:
        page = random.randint(1, 3)
        self.client.get(f"/api/v1/images?page={page}&per_page=50", headers=self.auth,
                        name="/api/v1/images [list]")

    @task(1)
    def import_and_approve(self) -> None:
        code = f"LOAD-{uuid.uuid4().hex[:10]}"
        with self.client.post("/api/v1/images", headers=self.auth, name="/api/v1/images [import]",
                              data={"code": code},
                              files={"file": (f"{code}.jpg", generated_jpeg(), "image/jpeg")},
                              catch_response=True) as resp:
            found = image_id(resp.json()) if resp.status_code == 201 else None
            if found is None:
                resp.failure(f"import answered {resp.status_code}: {resp.text[:200]}")
                return
        self.client.post(f"/api/v1/images/{found}/approve", headers=self.auth,
                         name="/api/v1/images/[id]/approve")
