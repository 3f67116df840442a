# The pelbiot-jobs image used by docker-compose.yml: one image, the command picks the role.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md requirements.lock ./
COPY pelbiot_jobs ./pelbiot_jobs
# The pinned versions first (a reproducible image), then the project itself without resolving again.
RUN pip install -r requirements.lock && pip install --no-deps . && useradd --create-home --uid 1000 pelbiot && mkdir -p /data && chown pelbiot /data
USER pelbiot
WORKDIR /data
ENTRYPOINT ["pelbiot-jobs"]
CMD ["--help"]
