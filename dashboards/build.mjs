// Bundles the dashboard with esbuild into PULSE_DASHBOARD_OUT (default dist/):
// one minified, content-hashed JS and CSS file per page (the server caches those for a
// year), the HTML pages that name them (never cached), and a gzip copy of each.
// No CDN: uPlot is bundled.
import * as esbuild from 'esbuild';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import path from 'node:path';

const out = process.env.PULSE_DASHBOARD_OUT || 'dist';
const pages = ['analytics', 'live'];

await rm(path.join(out, 'assets'), { recursive: true, force: true });
await mkdir(path.join(out, 'assets'), { recursive: true });
const result = await esbuild.build({
  entryPoints: Object.fromEntries(pages.map((p) => [p, `web/${p}.js`])),
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2020'],
  entryNames: '[name]-[hash]',
  outdir: path.join(out, 'assets'),
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
});

for (const page of pages) {
  const outputs = Object.entries(result.metafile.outputs).filter(
    ([, o]) => o.entryPoint === `web/${page}.js`,
  );
  const js = outputs.map(([f]) => path.basename(f)).find((f) => f.endsWith('.js'));
  const css = outputs.map(([, o]) => o.cssBundle).filter(Boolean).map((f) => path.basename(f))[0];
  if (!js || !css) throw new Error(`no JS/CSS output for ${page}`);
  const html = (await readFile(`web/${page}.html`, 'utf8'))
    .replaceAll('%JS%', `/dashboard/assets/${js}`)
    .replaceAll('%CSS%', `/dashboard/assets/${css}`);
  await writeFile(path.join(out, `${page}.html`), html);
}

// Gzip-9 copies beside every file: the server sends them to browsers that accept gzip.
for (const dir of [out, path.join(out, 'assets')]) {
  for (const f of await readdir(dir, { withFileTypes: true })) {
    if (!f.isFile() || f.name.endsWith('.gz')) continue;
    const file = path.join(dir, f.name);
    await writeFile(`${file}.gz`, gzipSync(await readFile(file), { level: 9 }));
  }
}
