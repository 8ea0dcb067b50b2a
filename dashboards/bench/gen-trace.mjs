// A 30-day NDJSON trace for the dashboard benchmark: channel `bench`, stream `bench-1`,
// `sessions` views spread evenly, each with a startup, heartbeats every 10 s for 1-20
// minutes, a rebuffer now and then, chat and follows. Deterministic (seeded).
//
//   node bench/gen-trace.mjs <start-ms> <days> <sessions> > trace.ndjson
const [startArg, daysArg, sessionsArg] = process.argv.slice(2);
const start = Number(startArg);
const span = Number(daysArg) * 24 * 3600e3;
const sessions = Number(sessionsArg);
let seed = 42;
const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const lines = [];
for (let n = 0; n < sessions; n++) {
  const base = { viewer: `v${Math.floor(rnd() * sessions * 0.6)}`, channel: 'bench', stream: 'bench-1', session: `s${n}` };
  let t = start + Math.floor((span * n) / sessions);
  const ev = (type, extra = {}) => lines.push({ type, ts: t, ...base, ...extra });
  ev('viewstart', { device: rnd() < 0.5 ? 'mobile' : 'desktop' });
  t += 300 + Math.floor(rnd() * 3000);
  ev('playing');
  const beats = 6 + Math.floor(rnd() * 114);
  for (let b = 0; b < beats; b++) {
    t += 10_000;
    if (rnd() < 0.03) {
      ev('rebuffer_start');
      t += 500 + Math.floor(rnd() * 4000);
      ev('rebuffer_end');
    } else ev('heartbeat', { state: 'playing' });
    if (rnd() < 0.05) lines.push({ type: 'chat', ts: t, viewer: base.viewer, channel: 'bench', stream: 'bench-1', count: 1 + Math.floor(rnd() * 3) });
  }
  if (rnd() < 0.05) lines.push({ type: 'follow', ts: t, viewer: base.viewer, channel: 'bench', stream: 'bench-1' });
  t += 1000;
  ev('viewend');
}
lines.sort((a, b) => a.ts - b.ts);
process.stdout.write(lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
