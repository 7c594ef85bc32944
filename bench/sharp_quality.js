// sharp, the peer of q=auto's bench (bench/quality_auto.py): encodes already-resized PNGs in one
// format at each quality asked, and once with sharp's own defaults (no quality given).
// usage: node sharp_quality.js spec.json  ->  JSON on stdout {name: {fmt: {quality|"default": path}}}
'use strict';
const fs = require('fs');
const sharp = require('sharp');

sharp.cache(false);
sharp.concurrency(1);

async function main() {
  const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const results = {};
  for (const image of spec.images) {
    const input = fs.readFileSync(image.input);
    results[image.name] = {};
    for (const [fmt, qualities] of Object.entries(spec.qualities)) {
      results[image.name][fmt] = {};
      for (const quality of [...qualities, 'default']) {
        const options = quality === 'default' ? {} : {quality};
        const output = await sharp(input)[fmt](options).toBuffer();
        const path = `${spec.out}/sharp-${image.name}-${quality}.${fmt}`;
        fs.writeFileSync(path, output);
        results[image.name][fmt][quality] = path;
      }
    }
  }
  process.stdout.write(JSON.stringify({results, version: sharp.versions.sharp}));
}

main().catch((error) => { console.error(error); process.exit(1); });
