# The pelbiot-jobs image used by docker-compose.yml: one image, the command picks the role.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY pelbiot_jobs ./pelbiot_jobs
RUN pip install . && useradd --create-home --uid 1000 pelbiot && mkdir -p /data && chown pelbiot /data
USER pelbiot
WORKDIR /data
ENTRYPOINT ["pelbiot-jobs"]
CMD ["--help"]
