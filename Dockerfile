# melodybot: the Discord and Telegram bots with the shipped model, MuseScore and FluidSynth.
# Build: docker build -t melodybot .      Run: see docker-compose.yml and README ("Run it on a server").
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    QT_QPA_PLATFORM=offscreen

# System tools for score pictures and audio previews (their own layer: changes rarely).
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        musescore3 libfluidsynth3 fluid-soundfont-gm libopus0 fonts-dejavu-core libcairo2 \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin melodybot
WORKDIR /app

# Python dependencies in a layer of their own: code changes do not reinstall them.
# The bot composes with NumPy alone, so TensorFlow (the `train` extra) stays out of the image.
# constraints.txt pins every one of them (scripts/lock-runtime), so a later build installs what
# was tested.
COPY pyproject.toml README.md constraints.txt ./
RUN mkdir -p melodybot generator bot storage \
    && touch melodybot/__init__.py generator/__init__.py bot/__init__.py storage/__init__.py \
    && pip install -c constraints.txt . \
    && pip uninstall -y melodybot \
    && rm -rf melodybot generator bot storage

COPY melodybot ./melodybot
COPY generator ./generator
COPY bot ./bot
COPY storage ./storage
COPY models ./models
RUN pip install --no-deps . && python -c "import melodybot.cli, storage, generator.engine"

ENV MELODYBOT_DATA_DIR=/data \
    MELODYBOT_MODEL_DIR=/app/models/esac-lstm \
    MELODYBOT_HEARTBEAT_FILE=/data/heartbeat.json
RUN mkdir /data && chown melodybot /data
VOLUME ["/data"]
USER melodybot

HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["melodybot", "health"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["melodybot"]
CMD ["run"]
