// sharp, the peer for the catalogue's metadata: what a placeholder needs from a photo (its header,
// then 32 pixels a side), single-threaded, cache off.
// usage: node sharp_metadata.js rounds photo.jpg [...]  ->  JSON on stdout {file: {metadata_ms: [...], sample_ms: [...]}}
'use strict';
const fs = require('fs');
const sharp = require('sharp');

sharp.cache(false);
sharp.concurrency(1);

async function timed(run, rounds) {
  await run(); // warm-up
  const ms = [];
  for (let i = 0; i < rounds; i++) {
    const started = process.hrtime.bigint();
    await run();
    ms.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  return ms;
}

async function main() {
  const rounds = Number(process.argv[2]);
  const results = {};
  for (const path of process.argv.slice(3)) {
    const input = fs.readFileSync(path);
    const header = () => sharp(input).metadata();
    // header, then a 32-pixel sample (shrink-on-load): the same two steps image-cdn takes
    const sample = async () => {
      const meta = await sharp(input).metadata();
      const pixels = await sharp(input).rotate().resize(32, 32, {fit: 'inside'}).raw().toBuffer();
      return [meta.width, pixels.length];
    };
    results[path] = {metadata_ms: await timed(header, rounds), sample_ms: await timed(sample, rounds)};
  }
  process.stdout.write(JSON.stringify({results, version: sharp.versions.sharp}));
}

main().catch((error) => { console.error(error); process.exit(1); });
