# E-co Gram: one image for the web service and the command line.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ECOGRAM_HOST=0.0.0.0 \
    ECOGRAM_PORT=8080 \
    ECOGRAM_DATA_DIR=/var/lib/ecogram

WORKDIR /app

# Dependencies first, so a code change does not reinstall them. pyvips-binary carries libvips:
# no system image libraries are needed.
COPY pyproject.toml README.md ./
COPY ecogram/__init__.py ecogram/__init__.py
RUN pip install . && pip uninstall -y ecogram

COPY ecogram ecogram
COPY sql sql
COPY templates templates
COPY static static
RUN pip install --no-deps -e . \
    && groupadd --system --gid 10001 ecogram \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/ecogram --create-home ecogram

USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"]
CMD ["ecogram", "serve"]
