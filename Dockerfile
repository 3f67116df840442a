# The pelbiot-jobs image used by docker-compose.yml: one image, the command picks the role.
# Stage 1 builds the wheel with a C compiler (the slow-log digest's C reader, pelbiot_jobs/queries/_scan.c);
# the image itself carries no compiler.
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY pelbiot_jobs ./pelbiot_jobs
RUN pip wheel --no-deps --wheel-dir /wheels . && python -c "import zipfile, glob; \
    names = zipfile.ZipFile(glob.glob('/wheels/*.whl')[0]).namelist(); \
    assert any('queries/_scan' in n for n in names), 'the C reader was not built'"

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY requirements.lock ./
COPY --from=build /wheels /wheels
# The pinned versions first (a reproducible image), then the project itself without resolving again.
RUN pip install -r requirements.lock && pip install --no-deps /wheels/*.whl && rm -rf /wheels && useradd --create-home --uid 1000 pelbiot && mkdir -p /data && chown pelbiot /data
USER pelbiot
WORKDIR /data
ENTRYPOINT ["pelbiot-jobs"]
CMD ["--help"]
