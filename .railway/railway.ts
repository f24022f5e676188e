// Railway Infrastructure as Code for ordergate: the documented way to set up its Railway service
// (README, "Deploying on Railway"). Railway does not read this file at deploy time: the Railway
// CLI applies it to the project once, and again whenever you change it:
//   npm install railway        # the SDK that provides "railway/iac" (commit nothing it creates)
//   railway login && railway link
//   railway config plan        # preview: it must not delete anything you still use
//   railway config apply       # apply (asks for confirmation)
//
// The file describes the whole project: a service, database or volume in the Railway project
// that is not listed here is deleted by `apply` (the plan says so first).
//
// Secrets are never written here. Set them with `railway variable set NAME --stdin`
// (or in the dashboard); preserve() keeps what is set.
import { defineRailway, github, preserve, project, service } from "railway/iac";
// For PostgreSQL or a volume, also import: postgres, volume

export default defineRailway(() =>
  project("ordergate", {
    resources: [
      service("ordergate", {
        source: github("YOUR_GITHUB_USER/ordergate", { branch: "main" }), // your fork
        start: "python -m ordergate serve", // the Procfile's command too; listens on $PORT
        healthcheck: "/readyz",
        healthcheckTimeout: 120,
        replicas: 1,
        // Railway's default restart policy (on failure, at most 10 times) is the one ordergate wants.
        env: {
          // Test money first. For real money: ORDERGATE_ENV "live", and LIVE_TRADING "yes"
          // (BINANCE_TESTNET "false" moves the BINANCE route to live Binance too).
          ORDERGATE_ENV: "testnet",
          BINANCE_TESTNET: "true",
          // SIGTERM to SIGKILL on redeploy (Railway's default is 0 s): ordergate drains the
          // signals in flight for one second less than this.
          RAILWAY_DEPLOYMENT_DRAINING_SECONDS: "30",
          WEBHOOK_SECRET: preserve(),
          BINANCE_API_KEY: preserve(),
          BINANCE_API_SECRET: preserve(),
          // With PostgreSQL:  const db = postgres("postgres");  DATABASE_URL: db.env.DATABASE_URL,
        },
        // A SQLite journal needs a volume (the container disk is wiped on redeploy):
        //   const data = volume("ordergate-data", { sizeMB: 1024 });  volumeMounts: { "/data": data },
        //   and ORDERGATE_DB: "/data/ordergate.db" in env
      }),
    ],
  }),
);
