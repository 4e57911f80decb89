/**
 * The `peel` command tree, built with `effect/cli`. Exit codes (DESIGN §7): 0 success, 1 some requests
 * failed, 2 usage or configuration error.
 *
 * @since 0.1.0
 */
import { Effect, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import * as Batch from "./commands/batch.ts"
import { estimate } from "./commands/estimate.ts"
import * as Keys from "./commands/keys.ts"
import { models } from "./commands/models.ts"
import { report } from "./commands/report.ts"
import { run } from "./commands/run.ts"
import { serve } from "./commands/serve.ts"
import { simulate } from "./commands/simulate.ts"
import { stats } from "./commands/stats.ts"
import { validate } from "./commands/validate.ts"

const setExit = (code: number) =>
  Effect.sync(() => {
    process.exitCode = code
  })

const optionalString = (name: string, description: string) =>
  Flag.String(name).pipe(Flag.withDescription(description), Flag.optional)

const orUndefined = <A>(option: Option.Option<A>): A | undefined => Option.getOrUndefined(option)

const validateCommand = Command.make(
  "validate",
  {
    files: Argument.String("file").pipe(Argument.withDescription("Pipeline YAML files"), Argument.variadic({ min: 1 })),
    offline: Flag.Boolean("offline").pipe(
      Flag.withDescription(
        "Check structure, plugins and cross-references without secrets: unset ${VAR}s are no error (for CI)",
      ),
      Flag.withDefault(false),
    ),
  },
  ({ files, offline }) => validate(files, { offline }).pipe(Effect.flatMap(setExit)),
).pipe(Command.withDescription("Check pipeline files; print every problem as FILE:LINE:COL: message"))

const modelsCommand = Command.make(
  "models",
  {
    file: Argument.String("pipeline").pipe(
      Argument.withDescription("Pipeline YAML file: also list the channels that serve each model"),
      Argument.optional,
    ),
    json: Flag.Boolean("json").pipe(Flag.withDescription("Print one JSON object per model"), Flag.withDefault(false)),
  },
  ({ file, json }) =>
    models({ json, ...(Option.isSome(file) ? { file: file.value } : {}) }).pipe(Effect.flatMap(setExit)),
).pipe(
  Command.withDescription(
    "The model catalog: ids, aliases, status, sizes, aspect ratios, prices; with a pipeline, the channels serving each",
  ),
)

const runCommand = Command.make(
  "run",
  {
    file: Argument.String("file").pipe(Argument.withDescription("Pipeline YAML file")),
    prompt: optionalString("prompt", "Prompt for a single image"),
    input: optionalString("input", "JSONL file of ImageRequests (bulk run)"),
    id: optionalString("id", "Request id (names the output file)"),
    use: optionalString("use", "Intended use: thumbnail, social, blog, web, hero, print, ..."),
    priority: optionalString("priority", "high | normal | low"),
    urgency: optionalString("urgency", "realtime | batch"),
    size: optionalString(
      "size",
      "512 | 1K | 2K | 4K (512: gemini-3.1-flash-image only; default: the pipeline's, else 1K)",
    ),
    aspectRatio: optionalString(
      "aspect-ratio",
      "1:1 2:3 3:2 3:4 4:3 4:5 5:4 9:16 16:9 21:9; 1:4 4:1 1:8 8:1 on gemini-3.1-flash-image (default 1:1)",
    ),
    image: Flag.String("image").pipe(
      Flag.withDescription(
        "Reference image: a path, an http(s) URL or a data: URI; repeat for several (at most 14), e.g. --image fox.png --image style.jpg",
      ),
      Flag.atLeast(0),
    ),
    n: Flag.Int("n").pipe(
      Flag.withDescription("Images to make (1-10): files ID-1.png ... ID-n.png, seeds seed ... seed+n-1"),
      Flag.optional,
    ),
    seed: Flag.Int("seed").pipe(Flag.withDescription("Seed, where the upstream takes one"), Flag.optional),
    imageOnly: Flag.Boolean("image-only").pipe(
      Flag.withDescription("Ask for the image alone, without the model's text"),
      Flag.withDefault(false),
    ),
    model: optionalString("model", "Model id (overrides routing)"),
    out: Flag.String("out").pipe(Flag.withDescription("Folder for images (default ./out)"), Flag.withDefault("./out")),
    json: Flag.Boolean("json").pipe(Flag.withDescription("Print one JSON result per line"), Flag.withDefault(false)),
    dryRun: Flag.Boolean("dry-run").pipe(
      Flag.withDescription("Print each request's plan as one JSON line; call nobody, write nothing"),
      Flag.withDefault(false),
    ),
    concurrency: Flag.Int("concurrency").pipe(
      Flag.withDescription("Requests in flight (bulk), 1 to 256 (default 4)"),
      Flag.withDefault(4),
    ),
    callLog: optionalString("call-log", "Append a JSON line per attempt and per request (and alerts) to FILE"),
    maxSpend: optionalString(
      "max-spend",
      "Cap the run's spend in USD: start no request that could pass it (the summary says so; exit 1)",
    ),
    state: Flag.String("state").pipe(
      Flag.withDescription(
        `Folder of the work journal for bulk runs and batch work (journal.sqlite); default ${Batch.defaultStateDir}`,
      ),
      Flag.optional,
    ),
    pollEvery: Flag.String("poll-every").pipe(
      Flag.withDescription("Shortest pause between polls of batch jobs (backoff ×1.5, at most 5m)"),
      Flag.optional,
    ),
    postgres: optionalString(
      "postgres",
      "postgres:// URL: the work journal and the spend ledger in Postgres (wins over the pipeline's state: block); workers given the same URL and --input split the work",
    ),
    lease: optionalString(
      "lease",
      "With Postgres: how long a worker's claim on a request lasts unless renewed; a killed worker's requests are claimed again after it (default 30s)",
    ),
    drainTimeout: Flag.String("drain-timeout").pipe(
      Flag.withDescription(
        "After SIGINT/SIGTERM, how long requests in flight may take to finish (500ms, 30s, 2m; default 30s)",
      ),
      Flag.withDefault("30s"),
    ),
    redis: optionalString(
      "redis",
      "Redis URL for the state services (rate limits, breakers, quota pauses, budgets, cache), shared by every worker naming it; wins over the pipeline's state.redis",
    ),
  },
  (flags) =>
    run({
      file: flags.file,
      out: flags.out,
      json: flags.json,
      dryRun: flags.dryRun,
      concurrency: flags.concurrency,
      drainTimeout: flags.drainTimeout,
      ...(flags.image.length === 0 ? {} : { images: flags.image }),
      ...(Option.isSome(flags.n) ? { n: flags.n.value } : {}),
      ...(Option.isSome(flags.seed) ? { seed: flags.seed.value } : {}),
      ...(flags.imageOnly ? { imageOnly: true } : {}),
      ...Object.fromEntries(
        (
          [
            "prompt",
            "input",
            "id",
            "use",
            "priority",
            "urgency",
            "size",
            "aspectRatio",
            "model",
            "callLog",
            "maxSpend",
            "state",
            "pollEvery",
            "postgres",
            "lease",
            "redis",
          ] as const
        )
          .map((key) => [key, orUndefined(flags[key])])
          .filter(([, value]) => value !== undefined),
      ),
    }).pipe(Effect.flatMap(setExit)),
).pipe(
  Command.withDescription("Make images through a pipeline: one --prompt, or --input REQUESTS.jsonl"),
  Command.withExamples([
    {
      command: 'peel run pipelines/google-direct.yaml --prompt "a red fox" --size 2K --aspect-ratio 16:9',
      description: "One image, 2K landscape",
    },
    {
      command: 'peel run pipelines/realtime.yaml --prompt "the same fox, in snow" --image fox.png --n 3 --seed 7',
      description: "Three edits of a reference image: out/ID-1.png ... ID-3.png",
    },
    {
      command: "peel run pipelines/realtime.yaml --input requests.jsonl --concurrency 8 --json",
      description: "A bulk job, resumable (re-running skips what is in --out)",
    },
    {
      command: "peel run pipelines/demo.yaml --input requests.jsonl --dry-run",
      description: "The plan and expected price of each request; nothing is called",
    },
  ]),
)

const estimateCommand = Command.make(
  "estimate",
  {
    file: Argument.String("file").pipe(Argument.withDescription("Pipeline YAML file")),
    input: optionalString("input", "JSONL file of ImageRequests: the cost of exactly these"),
    workload: optionalString("workload", "Workload YAML (e.g. pipelines/workloads/brief.yaml): the cost per month"),
    json: Flag.Boolean("json").pipe(
      Flag.withDescription("Print one JSON object (totalUsd, baselineUsd, breakdowns)"),
      Flag.withDefault(false),
    ),
  },
  (flags) =>
    estimate({
      file: flags.file,
      json: flags.json,
      ...Object.fromEntries(
        (["input", "workload"] as const)
          .map((key) => [key, orUndefined(flags[key])])
          .filter(([, value]) => value !== undefined),
      ),
    }).pipe(Effect.flatMap(setExit)),
).pipe(
  Command.withDescription(
    "What a pipeline would cost (planning only, no calls) against Google's standard price: --input REQUESTS.jsonl or --workload FILE",
  ),
)

const simulateCommand = Command.make(
  "simulate",
  {
    host: Flag.String("host").pipe(Flag.withDefault("127.0.0.1"), Flag.withDescription("Address to listen on")),
    port: Flag.Int("port").pipe(Flag.withDefault(0), Flag.withDescription("Port (0 picks a free one)")),
    latency: optionalString("latency", "Fixed (200ms) or lognormal:median=2s,p99=20s"),
    faults: optionalString(
      "faults",
      "[route:]kind[@model]=probability,... e.g. 429=0.2,503=0.05,hang=0.01; openrouter:402=0.1 (one route); 503@gemini-3-pro-image=1 (one model: Pro fails on every route, Flash works)",
    ),
    seed: Flag.Int("seed").pipe(Flag.optional, Flag.withDescription("Random seed")),
    rpm: Flag.Int("rpm").pipe(
      Flag.optional,
      Flag.withDescription("Requests per minute per key; its 429s carry the wait until the window frees a slot"),
    ),
    timeScale: Flag.Finite("time-scale").pipe(
      Flag.optional,
      Flag.withDescription(
        "Multiply simulated delays, the rpm window and advertised retry delays (RetryInfo, Retry-After, retry-after-ms); 0.01 = 100x faster",
      ),
    ),
  },
  (flags) =>
    simulate({
      host: flags.host,
      port: flags.port,
      ...Object.fromEntries(
        (["latency", "faults", "seed", "rpm", "timeScale"] as const)
          .map((key) => [key, orUndefined(flags[key] as Option.Option<unknown>)])
          .filter(([, value]) => value !== undefined),
      ),
    }),
).pipe(Command.withDescription("Start the upstream simulator; prints 'simulator listening on http://HOST:PORT'"))

const serveCommand = Command.make(
  "serve",
  {
    file: Argument.String("pipeline").pipe(Argument.withDescription("Pipeline YAML file")),
    host: Flag.String("host").pipe(Flag.withDefault("127.0.0.1"), Flag.withDescription("Address to listen on")),
    port: Flag.Int("port").pipe(Flag.withDefault(8080), Flag.withDescription("Port (0 picks a free one)")),
    state: optionalString(
      "state",
      `Folder of the gateway's state (virtual keys, journal); default ${Batch.defaultStateDir}`,
    ),
    drainTimeout: Flag.String("drain-timeout").pipe(
      Flag.withDescription("After SIGINT/SIGTERM, how long requests and runs in flight may take to finish"),
      Flag.withDefault("30s"),
    ),
    callLog: optionalString("call-log", "Append a JSON line per attempt and per request (with the key's name) to FILE"),
    noAccessLog: Flag.Boolean("no-access-log").pipe(
      Flag.withDescription("Do not write the access log (one JSON line per request on stderr)"),
      Flag.withDefault(false),
    ),
    keys: Flag.String("keys").pipe(
      Flag.withDescription(
        "Virtual keys: auto (required once the state holds any key; open until then), required, or off (open)",
      ),
      Flag.withDefault("auto"),
    ),
    adminKeyEnv: optionalString(
      "admin-key-env",
      "Enable the admin API (/admin/keys) with the admin key in this environment variable, e.g. PEEL_ADMIN_KEY",
    ),
    postgres: optionalString(
      "postgres",
      "postgres:// URL: virtual keys, their spend and the budgets in Postgres, shared by every replica (wins over the pipeline's state: block)",
    ),
    redis: optionalString(
      "redis",
      "Redis URL for the state services (rate limits, breakers, quota pauses, budgets, cache), shared by every worker naming it; wins over the pipeline's state.redis",
    ),
  },
  (flags) =>
    serve({
      file: flags.file,
      host: flags.host,
      port: flags.port,
      drainTimeout: flags.drainTimeout,
      accessLog: !flags.noAccessLog,
      keys: flags.keys,
      ...(Option.isSome(flags.adminKeyEnv) ? { adminKeyEnv: flags.adminKeyEnv.value } : {}),
      ...(Option.isSome(flags.state) ? { state: flags.state.value } : {}),
      ...(Option.isSome(flags.callLog) ? { callLog: flags.callLog.value } : {}),
      ...(Option.isSome(flags.postgres) ? { postgres: flags.postgres.value } : {}),
      ...(Option.isSome(flags.redis) ? { redis: flags.redis.value } : {}),
    }).pipe(Effect.flatMap(setExit)),
).pipe(
  Command.withDescription(
    "Serve the pipeline over HTTP for the Gemini and OpenAI SDKs; prints 'peel gateway listening on http://HOST:PORT'",
  ),
)

const callLogs = Argument.String("file").pipe(
  Argument.withDescription("Call logs (peel run --call-log), rotated parts included"),
  Argument.variadic({ min: 1 }),
)

const reportCommand = Command.make(
  "report",
  {
    files: callLogs,
    out: Flag.String("out").pipe(Flag.withDescription("The HTML file to write"), Flag.withDefault("report.html")),
    title: optionalString("title", "Title of the page"),
  },
  (flags) =>
    report({
      files: flags.files,
      out: flags.out,
      ...(Option.isSome(flags.title) ? { title: flags.title.value } : {}),
    }).pipe(Effect.flatMap(setExit)),
).pipe(Command.withDescription("Write a self-contained HTML report (charts, alerts, summary) from call logs"))

const statsCommand = Command.make(
  "stats",
  {
    files: callLogs,
    json: Flag.Boolean("json").pipe(
      Flag.withDescription("Print the summary as one JSON object"),
      Flag.withDefault(false),
    ),
    by: optionalString("by", "key: one row per virtual key (requests through peel serve): requests, billed, spent"),
  },
  (flags) =>
    stats({ files: flags.files, json: flags.json, ...(Option.isSome(flags.by) ? { by: flags.by.value } : {}) }).pipe(
      Effect.flatMap(setExit),
    ),
).pipe(Command.withDescription("Summarise call logs in the terminal: calls, billed images, spend, latency, errors"))

const stateFlag = Flag.String("state").pipe(
  Flag.withDescription(
    `Folder of the work journal (journal.sqlite); default ${Batch.defaultStateDir} in the working folder`,
  ),
  Flag.withDefault(Batch.defaultStateDir),
)
const postgresFlag = Flag.String("postgres").pipe(
  Flag.withDescription(
    "postgres:// URL: the work journal in Postgres, shared by every worker (wins over the pipeline's state: block)",
  ),
  Flag.optional,
)
const jsonFlag = Flag.Boolean("json").pipe(Flag.withDescription("Print JSON lines"), Flag.withDefault(false))
const jobArgument = Argument.String("job").pipe(
  Argument.withDescription("Job: Peel's key, its display name (peel-KEY) or the upstream name (batches/...)"),
)

const batchCommand = Command.make("batch").pipe(
  Command.withDescription("Google's Batch API at half price: submit, status, collect, cancel, list"),
  Command.withSubcommands([
    Command.make(
      "submit",
      {
        pipeline: Argument.String("pipeline").pipe(Argument.withDescription("Pipeline YAML file with a batch channel")),
        input: Flag.String("input").pipe(Flag.withDescription("JSONL file of ImageRequests (all batch work)")),
        wait: Flag.Boolean("wait").pipe(
          Flag.withDescription("Stay, show progress and collect each job as it finishes"),
          Flag.withDefault(false),
        ),
        out: Flag.String("out").pipe(Flag.withDescription("Folder for images"), Flag.withDefault("./out")),
        state: stateFlag,
        postgres: postgresFlag,
        json: jsonFlag,
        pollEvery: Flag.String("poll-every").pipe(
          Flag.withDescription("Shortest pause between polls with --wait (backoff ×1.5 up to --poll-max)"),
          Flag.withDefault("5s"),
        ),
        pollMax: Flag.String("poll-max").pipe(
          Flag.withDescription("Longest pause between polls with --wait"),
          Flag.withDefault("5m"),
        ),
        redis: optionalString(
          "redis",
          "Redis URL for the state services (rate limits, breakers, quota pauses, budgets, cache), shared by every worker naming it; wins over the pipeline's state.redis",
        ),
      },
      (flags) =>
        Batch.submit({ ...flags, postgres: orUndefined(flags.postgres), redis: orUndefined(flags.redis) }).pipe(
          Effect.flatMap(setExit),
        ),
    ).pipe(Command.withDescription("Send a JSONL file of requests as batch jobs (never twice)")),
    Command.make(
      "status",
      { job: jobArgument.pipe(Argument.optional), state: stateFlag, postgres: postgresFlag, json: jsonFlag },
      (flags) =>
        Batch.status({
          state: flags.state,
          postgres: orUndefined(flags.postgres),
          json: flags.json,
          ...(Option.isSome(flags.job) ? { job: flags.job.value } : {}),
        }).pipe(Effect.flatMap(setExit)),
    ).pipe(Command.withDescription("Poll live jobs; print every job (or one job and its requests)")),
    Command.make(
      "collect",
      {
        job: jobArgument.pipe(Argument.optional),
        out: optionalString("out", "Folder for images (default: the one given at submit)"),
        state: stateFlag,
        postgres: postgresFlag,
        json: jsonFlag,
        redis: optionalString(
          "redis",
          "Redis URL for the state services (rate limits, breakers, quota pauses, budgets, cache), shared by every worker naming it; wins over the pipeline's state.redis",
        ),
      },
      (flags) =>
        Batch.collect({
          state: flags.state,
          postgres: orUndefined(flags.postgres),
          json: flags.json,
          ...(Option.isSome(flags.redis) ? { redis: flags.redis.value } : {}),
          ...(Option.isSome(flags.job) ? { job: flags.job.value } : {}),
          ...(Option.isSome(flags.out) ? { out: flags.out.value } : {}),
        }).pipe(Effect.flatMap(setExit)),
    ).pipe(
      Command.withDescription(
        "Write the images of finished jobs (idempotent); resubmit or report what did not come back",
      ),
    ),
    Command.make("cancel", { job: jobArgument, state: stateFlag, postgres: postgresFlag, json: jsonFlag }, (flags) =>
      Batch.cancel({ ...flags, postgres: orUndefined(flags.postgres) }).pipe(Effect.flatMap(setExit)),
    ).pipe(Command.withDescription("Cancel a job")),
    Command.make("list", { state: stateFlag, postgres: postgresFlag, json: jsonFlag }, (flags) =>
      Batch.list({ ...flags, postgres: orUndefined(flags.postgres) }).pipe(Effect.flatMap(setExit)),
    ).pipe(Command.withDescription("Every job in the journal")),
  ]),
)

const keysStateFlag = Flag.String("state").pipe(
  Flag.withDescription(
    `State folder whose SQLite file (journal.sqlite) holds the keys; the one peel serve --state reads (default ${Batch.defaultStateDir})`,
  ),
  Flag.withDefault(Batch.defaultStateDir),
)

const keysPostgresFlag = Flag.String("postgres").pipe(
  Flag.withDescription("postgres:// URL: the keys (and their spend) in Postgres, shared by every gateway replica"),
  Flag.optional,
)

const keysCommand = Command.make("keys").pipe(
  Command.withDescription("The gateway's virtual keys: create, list, revoke (read live by a running peel serve)"),
  Command.withSubcommands([
    Command.make(
      "create",
      {
        name: Flag.String("name").pipe(Flag.withDescription("The key's name: letters, digits, . _ - (unique)")),
        budget: optionalString("budget", "Spend cap per window, USD/WINDOW: 5/1d, 0.50/1h (windows aligned to UTC)"),
        rpm: Flag.Int("rpm").pipe(Flag.withDescription("Requests admitted in any 60 s"), Flag.optional),
        models: optionalString("models", "Models it may use, comma-separated: gemini-3-pro-image,nano-banana-2"),
        state: keysStateFlag,
        postgres: keysPostgresFlag,
      },
      (flags) =>
        Keys.create({
          name: flags.name,
          state: flags.state,
          postgres: orUndefined(flags.postgres),
          ...(Option.isSome(flags.budget) ? { budget: flags.budget.value } : {}),
          ...(Option.isSome(flags.rpm) ? { rpm: flags.rpm.value } : {}),
          ...(Option.isSome(flags.models) ? { models: flags.models.value } : {}),
        }).pipe(Effect.flatMap(setExit)),
    ).pipe(Command.withDescription("Make a key; prints it alone on the last line, once (only its hash is kept)")),
    Command.make(
      "list",
      {
        state: keysStateFlag,
        postgres: keysPostgresFlag,
        redis: optionalString(
          "redis",
          "Redis URL: read each key's spend from this Redis, where peel serve --redis URL records it (unless --postgres holds it)",
        ),
        json: jsonFlag,
      },
      (flags) =>
        Keys.list({ ...flags, postgres: orUndefined(flags.postgres), redis: orUndefined(flags.redis) }).pipe(
          Effect.flatMap(setExit),
        ),
    ).pipe(Command.withDescription("Every key: name, prefix, status, limits, spend this window")),
    Command.make(
      "revoke",
      {
        name: Argument.String("name").pipe(Argument.withDescription("The key's name")),
        state: keysStateFlag,
        postgres: keysPostgresFlag,
      },
      (flags) => Keys.revoke({ ...flags, postgres: orUndefined(flags.postgres) }).pipe(Effect.flatMap(setExit)),
    ).pipe(Command.withDescription("Revoke a key: its next request is refused (401)")),
  ]),
)

export const peel = Command.make("peel").pipe(
  Command.withDescription("Peel: stable, cost-aware image generation for Gemini image models"),
  Command.withSubcommands([
    validateCommand,
    modelsCommand,
    runCommand,
    estimateCommand,
    simulateCommand,
    serveCommand,
    reportCommand,
    statsCommand,
    batchCommand,
    keysCommand,
  ]),
)

/** Run the CLI with the process's arguments. */
export const main = Command.run(peel, { version: "0.1.0" })
