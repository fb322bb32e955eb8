# mass-al-bridge container image.
#   docker build -t mass-al-bridge .
#   docker run --rm mass-al-bridge check-config --config /etc/mass-al-bridge/bridge.ini
# Build steps (scripts/docker-steps.sh repeats them outside Docker): npm ci, npm run build, npm prune --omit=dev.

FROM node:24-slim AS build
# better-sqlite3 compiles its native addon when no prebuilt binary fits; that needs a toolchain.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY bin ./bin
# npm ci runs the `prepare` script (the TypeScript build), so the sources must be present.
COPY src ./src
RUN npm ci
RUN npm run build
RUN npm prune --omit=dev

FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY openapi ./openapi
COPY config ./config
COPY config/docker.ini /etc/mass-al-bridge/bridge.ini
# The image's own `node` user (uid 1000) owns the ledger directory; nothing else is writable.
RUN mkdir -p /var/lib/mass-al-bridge && chown node:node /var/lib/mass-al-bridge
USER node
VOLUME ["/var/lib/mass-al-bridge"]
EXPOSE 8080
# slim has no curl: ask node. /ready is 200 only when the ledger is writable and both upstreams answered recently.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/ready',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Exec form: node is PID 1 and receives SIGTERM itself (the bridge drains for GracePeriod seconds).
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["run", "--config", "/etc/mass-al-bridge/bridge.ini"]
