# gabaapp BIDS-App image: CPU build of PyTorch, non-root user, `gabaapp` as the entry point.
#   docker build -t gabaapp:0.1.0 .
#   docker run --rm -v /data/bids:/data:ro -v /data/out:/out gabaapp:0.1.0 /data /out participant
FROM python:3.11-slim

ARG TORCH_VERSION=2.13.0
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLBACKEND=Agg \
    MPLCONFIGDIR=/tmp/matplotlib \
    NIPYPE_NO_ET=1 \
    GABAAPP_CONTAINER_TYPE=docker

# torch first, from the PyTorch CPU index: from PyPI, the open range of the package would pull
# a CUDA build of several GB.
RUN pip install --no-cache-dir "torch==${TORCH_VERSION}" \
        --index-url https://download.pytorch.org/whl/cpu

WORKDIR /opt/gabaapp-src
COPY pyproject.toml README.md ./
COPY gabaapp ./gabaapp
RUN pip install --no-cache-dir . \
    && useradd --create-home --shell /usr/sbin/nologin --uid 1000 gabaapp \
    && chmod a+rwx /home/gabaapp \
    && gabaapp --version

LABEL org.opencontainers.image.title="gabaapp" \
      org.opencontainers.image.description="BIDS-App quantifying GABA, Glu, Gln, NAA and Cr in MEGA-PRESS MR spectra" \
      org.opencontainers.image.licenses="MIT"

# The numeric id: hosts without this user name resolve it. HOME is writable for any user
# given with `docker run -u "$(id -u):$(id -g)"` (outputs then belong to the caller).
USER 1000:1000
ENV HOME=/home/gabaapp
WORKDIR /home/gabaapp
ENTRYPOINT ["gabaapp"]
CMD ["--help"]
