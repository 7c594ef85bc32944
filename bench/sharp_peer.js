// sharp, the peer: the same tasks as bench/transform.py, single-threaded, cache off.
// usage: node sharp_peer.js tasks.json  ->  JSON on stdout {task: {ms: [...], bytes, output}}
'use strict';
const fs = require('fs');
const sharp = require('sharp');

sharp.cache(false);
sharp.concurrency(1);

async function main() {
  const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const results = {};
  for (const task of spec.tasks) {
    const input = fs.readFileSync(task.input);
    const run = () => {
      const image = task.height ? sharp(input).resize(task.width, task.height) : sharp(input).resize(task.width);
      return image[task.fmt]({quality: task.quality}).toBuffer();
    };
    let output = await run(); // warm-up
    const ms = [];
    for (let i = 0; i < task.rounds; i++) {
      const started = process.hrtime.bigint();
      output = await run();
      ms.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
    const path = `${spec.out}/sharp-${task.name}.${task.fmt}`;
    fs.writeFileSync(path, output);
    results[task.name] = {ms, bytes: output.length, output: path};
  }
  process.stdout.write(JSON.stringify({results, version: sharp.versions.sharp, vips: sharp.versions.vips}));
}

main().catch((error) => { console.error(error); process.exit(1); });
