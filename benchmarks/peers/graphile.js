// graphile-worker through its own public API, for issue 15's same-run comparison (scripts/bench-peers.sh runs it just
// before Konduit's own benchmark, on the same PostgreSQL server). Prints one JSON object of figures on stdout.
//
//   DATABASE_URL=postgres://… JOBS=20000 node graphile.js
//
// Measures, each on an empty job table:
//   bulk     addJobs (graphile's bulk path) in batches of 100 from 4 callers, as Konduit's "enqueue batch 100", jobs/s
//   single   drain JOBS no-op jobs, concurrency 24, one job per fetch (graphile's default), jobs/s
//   batched  drain JOBS no-op jobs, concurrency 200, local queue of 201 and batched completions (graphile's batching)
//   pickup   an idle worker (LISTEN/NOTIFY): addJob to handler start, 50 samples, p50 and p99 in ms
// A drain ends when the server's job table is empty, not when the handlers have been called.
"use strict";
const { run, makeWorkerUtils } = require("graphile-worker");

const connectionString = process.env.DATABASE_URL;
if (!connectionString) {
  console.error("DATABASE_URL is not set (scripts/bench-peers.sh sets it from .services/env)");
  process.exit(2);
}
const jobs = Number(process.env.JOBS || 20000);
const { Logger } = require("graphile-worker");
// Quiet: a log line per job would be measured too.
const logger = new Logger(() => () => {});

async function queued(utils) {
  return utils.withPgClient(async (c) => Number((await c.query("select count(*) from graphile_worker._private_jobs")).rows[0].count));
}

async function emptyTable(utils) {
  await utils.withPgClient((c) => c.query("delete from graphile_worker._private_jobs"));
}

async function fill(utils, n) {
  for (let i = 0; i < n; i += 1000) {
    const batch = [];
    for (let k = i; k < Math.min(n, i + 1000); k++) batch.push({ identifier: "noop", payload: { n: k } });
    await utils.addJobs(batch);
  }
}

async function drain(utils, worker) {
  await emptyTable(utils);
  await fill(utils, jobs);
  const started = process.hrtime.bigint();
  const runner = await run({ logger, preset: { worker: { connectionString, ...worker } }, taskList: { noop: async () => {} } });
  while ((await queued(utils)) > 0) await new Promise((r) => setTimeout(r, 20));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await runner.stop();
  return Math.round(jobs / seconds);
}

(async () => {
  const utils = await makeWorkerUtils({ connectionString, logger });
  await utils.migrate();
  const out = { library: "graphile-worker", version: JSON.parse(require("fs").readFileSync(require("path").join(__dirname, "node_modules/graphile-worker/package.json"), "utf8")).version, jobs };

  // Bulk insert as Konduit's benchmark row "enqueue batch 100" runs it: batches of 100, 4 callers.
  await emptyTable(utils);
  let t = process.hrtime.bigint();
  let next = 0;
  const caller = async () => {
    for (let i = (next += 100) - 100; i < jobs; i = (next += 100) - 100) {
      const batch = [];
      for (let k = i; k < Math.min(jobs, i + 100); k++) batch.push({ identifier: "noop", payload: { n: k } });
      await utils.addJobs(batch);
    }
  };
  await Promise.all([caller(), caller(), caller(), caller()]);
  out.bulkJobsPerSecond = Math.round(jobs / (Number(process.hrtime.bigint() - t) / 1e9));
  if ((await queued(utils)) !== jobs) throw new Error("bulk insert: the job table does not hold every job");

  out.singleJobsPerSecond = await drain(utils, { concurrentJobs: 24, maxPoolSize: 26, pollInterval: 2000 });
  out.batchedJobsPerSecond = await drain(utils, {
    concurrentJobs: 200, maxPoolSize: 20, pollInterval: 2000,
    localQueue: { size: 201 }, completeJobBatchDelay: 0, failJobBatchDelay: 0,
  });

  await emptyTable(utils);
  const samples = [];
  let resolveStart = null;
  const runner = await run({
    logger, preset: { worker: { connectionString, concurrentJobs: 1, pollInterval: 2000 } },
    taskList: { noop: async () => { if (resolveStart) resolveStart(process.hrtime.bigint()); } },
  });
  await new Promise((r) => setTimeout(r, 500)); // the listener connects
  for (let i = 0; i < 50; i++) {
    const began = new Promise((r) => { resolveStart = r; });
    t = process.hrtime.bigint();
    await utils.addJob("noop", { n: i });
    const at = await began;
    samples.push(Number(at - t) / 1e6);
    await new Promise((r) => setTimeout(r, 20)); // idle again
  }
  await runner.stop();
  samples.sort((a, b) => a - b);
  out.pickupP50Ms = Number(samples[Math.floor(samples.length * 0.5)].toFixed(2));
  out.pickupP99Ms = Number(samples[Math.min(samples.length - 1, Math.floor(samples.length * 0.99))].toFixed(2));
  await utils.release();
  console.log(JSON.stringify(out));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
