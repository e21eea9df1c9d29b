FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md LICENSE ./
COPY domain domain
COPY commands commands
COPY eventstore eventstore
COPY projections projections
COPY readmodels readmodels
COPY api api
COPY replay replay
COPY ledgerline ledgerline
RUN pip install --no-cache-dir -c constraints.txt . \
    && useradd --system --uid 10001 --home-dir /var/lib/ledgerline --create-home ledgerline
# Keys, the signing key and local state live here: mount a volume (compose does).
ENV LEDGERLINE_DATA_DIR=/var/lib/ledgerline
VOLUME ["/var/lib/ledgerline"]
USER ledgerline
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --retries=6 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["ledgerline", "serve", "--host", "0.0.0.0"]
