FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY domain domain
COPY commands commands
COPY eventstore eventstore
COPY projections projections
COPY readmodels readmodels
COPY api api
COPY replay replay
COPY ledgerline ledgerline
RUN pip install --no-cache-dir -c constraints.txt .
ENV LEDGERLINE_DATA_DIR=/var/lib/ledgerline
CMD ["ledgerline", "serve", "--host", "0.0.0.0"]
