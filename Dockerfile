# Build: the release binary. Run: a small Debian image (glibc, as built) with wget
# for the compose healthcheck (`wget --spider http://localhost:8090/api/health`).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY .cargo ./.cargo
COPY scripts/hot-symbols.txt ./scripts/
COPY vendor ./vendor
COPY src ./src
COPY assets ./assets
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends wget ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/satchel /usr/local/bin/satchel
EXPOSE 8090
VOLUME /pb_data
ENTRYPOINT ["satchel", "serve", "--http=0.0.0.0:8090", "--dir=/pb_data"]
