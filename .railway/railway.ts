// Railway Infrastructure as Code for ordergate: what a *new* Railway service reads
// (railway.json, "Config as Code", is not read for services from 2026-12-01 on).
//
// Railway does not read this file at deploy time; the CLI applies it:
//   npm install railway        # the SDK that provides "railway/iac"
//   railway link               # pick the project
//   railway config plan        # preview
//   railway config apply       # apply (asks for confirmation)
//
// Secrets are never written here. Set them once in the dashboard or with
// `railway variables --set BINANCE_API_KEY=...`; preserve() keeps what is set.
import { defineRailway, github, preserve, project, service } from "railway/iac";
// For PostgreSQL or a volume, also import: postgres, volume

export default defineRailway((ctx) =>
  project("ordergate", {
    resources: [
      service("ordergate", {
        source: github("YOUR_GITHUB_USER/ordergate", { branch: "main" }), // your fork
        start: "python -m ordergate serve", // listens on $PORT, which Railway injects
        healthcheck: "/readyz",
        healthcheckTimeout: 120,
        replicas: 1,
        deploy: {
          restartPolicyType: "ON_FAILURE",
          restartPolicyMaxRetries: 10,
          // SIGTERM to SIGKILL window on redeploy (Railway's default is 0 s). If `plan` rejects
          // it, set the variable RAILWAY_DEPLOYMENT_DRAINING_SECONDS=30 instead.
          drainingSeconds: 30,
        },
        env: {
          ORDERGATE_ENV: ctx.environment === "production" ? "live" : "testnet",
          BINANCE_TESTNET: ctx.environment === "production" ? "false" : "true",
          BINANCE_API_KEY: preserve(),
          BINANCE_API_SECRET: preserve(),
          // With PostgreSQL:  const db = postgres("postgres");  DATABASE_URL: db.env.DATABASE_URL,
        },
        // A SQLite journal needs a volume (the container disk is wiped on redeploy):
        //   const data = volume("ordergate-data", { sizeMB: 1024 });  volumeMounts: { "/data": data },
      }),
    ],
  }),
);
