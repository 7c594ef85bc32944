// Viewer-request CloudFront Function (cloudfront-js-2.0): every request becomes one
// canonical variant path, /<key>/w_<W>[_h_<H>]_q_<Q|auto>[_fit_<F>|_crop_<C>].<fmt>, with the
// query cleared, so the cache key is the URI alone. Bad input is answered here with a
// 400 JSON body, a bad signature with a 403, and neither is forwarded.
// edge/variants.py and edge/signing.py are the Python twins; tables of cases
// (tests/cases/normalize.json, tests/cases/signing.json) run against both.
// Deploy replaces the CONFIG line below, drops the import line when signing is off
// (no KeyValueStore is associated then) and removes comments and whitespace (rjsmin).
import cf from 'cloudfront';
var CONFIG = {"widths":[160,320,480,640,768,1024,1280,1600,1920,2560],"qualities":[40,50,60,70,80,90],"defaultQuality":60,"formats":["avif","webp","jpeg","png"],"preflight":true,"crops":["center","entropy","attention"]};

var SPEC = /^w_([1-9][0-9]{0,4})(?:_h_([1-9][0-9]{0,4}))?_q_([1-9][0-9]{0,2}|auto)(?:_fit_(cover|contain|inside|fill))?(?:_crop_(center|entropy|attention|faces))?\.(avif|webp|jpeg|png|jxl)$/;
var FITS = ['cover', 'contain', 'inside', 'fill'];
var ALIASES = {w: 'width', width: 'width', h: 'height', height: 'height', q: 'quality',
  quality: 'quality', fm: 'format', format: 'format', fit: 'fit', crop: 'crop', dpr: 'dpr', preset: 'preset',
  hints: 'hints'};
// What a signature covers: the parameters above, its expiry and its key id. (Copied by hand:
// AWS's runtime 2.0 page lists ES 5.1's Object methods, and Object.assign is not ES 5.1.)
var SIGNED = {expires: 'expires', kid: 'kid'};
Object.keys(ALIASES).forEach(function (name) { SIGNED[name] = ALIASES[name]; });
// edge/variants.py: 1024 (S3) less the longest name stored below a key (a set marker with a multipart ETag).
var MAX_KEY_BYTES = 967;
// What a quality must be (edge/variants.py's QUALITY_EXPECTED / QUALITY_NUMBER).
var QN = 'integer between 1 and 100' + (CONFIG.qualityAuto ? ' or auto' : ' (auto needs qualityTarget)');

function Problem(parameter, expected, received, status) {
  var text = String(received);
  if (text.length > 64) text = text.slice(0, 64) + '...';
  this.status = status || 400;
  this.body = {error: status ? 'InvalidSignature' : 'InvalidParameter', parameter: parameter,
    expected: expected, received: JSON.stringify(text)};
  this.body.message = 'Expected ' + expected + ' for ' + parameter + ' but received ' + this.body.received;
}

function fail(parameter, expected, received, status) {
  throw new Problem(parameter, expected, received, status);
}

function decode(text, parameter) {
  if (/%(?![0-9A-Fa-f]{2})/.test(text)) fail(parameter, 'valid percent-encoding', text);
  try {
    return decodeURIComponent(text);
  } catch (e) {
    return fail(parameter, 'percent-encoded UTF-8', text);
  }
}

// encodeURIComponent, and '*' too: an invalidation path takes '*' only as its last character.
function encodeKey(key) {
  return key.split('/').map(function (s) { return encodeURIComponent(s).replace(/\*/g, '%2A'); }).join('/');
}

function validKey(key) {
  if (key === '') fail('key', 'a non-empty image key', key);
  if (/[\u0000-\u001f\u007f-\u009f]/.test(key)) fail('key', 'a key without control characters', key);
  var segments = key.split('/');
  for (var i = 0; i < segments.length; i++) {
    if (segments[i] === '') fail('key', 'a key without empty segments', key);
    if (segments[i] === '.' || segments[i] === '..') fail('key', "a key without '.' or '..' segments", key);
  }
  // A key in a folder ending in a variant name could never be asked for: its URL is a variant of the folder.
  if (segments.length > 1 && SPEC.test(segments[segments.length - 1])) {
    fail('key', 'a key whose last segment is not a variant name', key);
  }
  if (encodeKey(key).replace(/%[0-9A-F]{2}/g, 'x').length > MAX_KEY_BYTES) {
    fail('key', 'a key of at most ' + MAX_KEY_BYTES + ' UTF-8 bytes', key);
  }
  return key;
}

function snapWidth(width) {
  var widths = CONFIG.widths;
  for (var i = 0; i < widths.length; i++) if (widths[i] >= width) return widths[i];
  return widths[widths.length - 1];
}

function snapQuality(quality) {
  var best = CONFIG.qualities[0];
  CONFIG.qualities.forEach(function (q) {
    var d = Math.abs(q - quality), bd = Math.abs(best - quality);
    if (d < bd || (d === bd && q > best)) best = q;
  });
  return best;
}

function allowedFormat(fmt, received) {
  if (CONFIG.formats.indexOf(fmt) < 0) fail('format', 'one of ' + CONFIG.formats.join(', '), received);
}

function allowedCrop(crop, received) {
  if (CONFIG.crops.indexOf(crop) < 0) fail('crop', 'one of ' + CONFIG.crops.join(', '), received);
}

// The canonical path of a (key, width, height, quality, format, fit, crop) request.
// Quality 0 is q=auto (edge/settings.py's AUTO): it stays auto.
function canonical(key, width, height, quality, fmt, fit, crop) {
  var h = height === null ? null : snapWidth(height);
  var q = fmt === 'png' ? CONFIG.defaultQuality : quality && snapQuality(quality);
  var spec = 'w_' + snapWidth(width) + (h === null ? '' : '_h_' + h) + '_q_' + (q || 'auto') +
    (h !== null && fit !== 'cover' ? '_fit_' + fit : '') +
    (h !== null && fit === 'cover' && crop !== 'center' ? '_crop_' + crop : '') + '.' + fmt;
  return '/' + encodeKey(key) + '/' + spec;
}

function chooseFormat(accept) {
  var acceptable = {};
  accept.split(',').forEach(function (item) {
    var parts = item.split(';').map(function (p) { return p.replace(/^[ \t]+|[ \t]+$/g, '').toLowerCase(); });
    if (!parts.slice(1).some(function (p) { return /^q=0(\.0{0,3})?$/.test(p); })) acceptable[parts[0]] = true;
  });
  // jxl only beside what the fallback serves in its place (jxlWith); AVIF before it
  // (edge/variants.py's AUTO_ORDER says why).
  if (CONFIG.jxlWith && !acceptable['image/' + CONFIG.jxlWith]) acceptable['image/jxl'] = false;
  var order = ['avif', 'jxl', 'webp'];
  for (var i = 0; i < order.length; i++) {
    if (CONFIG.formats.indexOf(order[i]) >= 0 && acceptable['image/' + order[i]]) return order[i];
  }
  return CONFIG.formats.indexOf('jpeg') >= 0 ? 'jpeg' : CONFIG.formats[0];
}

// The positive integer `v` given for parameter `p`, at most `u` when there is one; else a 400
// expecting `e`. (One-letter names: the function must fit CloudFront Functions' 10 KB.)
function integer(p, v, e, u) {
  if (!u && /^0*[1-9][0-9]{9,}$/.test(v)) fail(p, 'a smaller ' + e + ' (at most 9 digits)', v);
  if (!/^[0-9]{1,9}$/.test(v) || +v === 0 || (u && +v > u)) fail(p, e, v);
  return +v;
}

// The first value of each parameter `names` knows, under its long name, decoded.
function collect(querystring, names) {
  var p = {};
  Object.keys(querystring).forEach(function (name) {
    var lower = name.toLowerCase();
    var long = Object.prototype.hasOwnProperty.call(names, lower) ? names[lower] : null;
    if (long && !(long in p)) p[long] = decode(querystring[name].value, long);
  });
  return p;
}

// A client hint's value, or null when absent or malformed (hints are never a 400).
function hint(headers, name, pattern) {
  var value = headers[name] ? headers[name].value.trim() : '';
  return pattern.test(value) && +value > 0 ? +value : null;
}

// `signed`: the URL carried a signature that verified. Client hints then apply only when the
// signer opted in (hints=on, itself signed): otherwise one signed URL is one variant per format.
function normalize(uri, querystring, accept, headers, signed) {
  if (uri.charAt(0) !== '/') fail('path', "a path starting with '/'", uri);
  // Routed on the decoded path, which is what a signature covers: %2F and %2E cannot make
  // one signed path name another original or variant.
  var path = decode(uri, 'key');
  var cut = path.lastIndexOf('/');
  var m = SPEC.exec(path.slice(cut + 1));
  if (m && cut > 0) {
    // Already a variant path (e.g. the 302 resize answers for big bodies): snap it.
    if (CONFIG.presetsOnly) fail('preset', 'a preset (this service serves presets only)', path.slice(cut + 1));
    var known = validKey(path.slice(1, cut));
    if (m[3] === 'auto' && !CONFIG.qualityAuto) fail('quality', QN, 'auto');
    allowedFormat(m[6], m[6]);
    allowedCrop(m[5] || 'center', m[5]);
    return canonical(known, +m[1], m[2] ? +m[2] : null, +m[3] || 0, m[6], m[4] || 'cover', m[5] || 'center');
  }
  var key = validKey(path.slice(1));
  var p = collect(querystring, ALIASES);
  if ('hints' in p && p.hints !== 'on') fail('hints', 'on', p.hints);
  var hints = CONFIG.hints && headers && (!signed || p.hints === 'on');
  var dpr = 1;
  if ('dpr' in p) {
    if (!/^[1-4](\.[0-9]{1,3})?$/.test(p.dpr) || +p.dpr > 4) fail('dpr', 'a number from 1 to 4', p.dpr);
    dpr = +p.dpr;
  } else if (hints) {
    dpr = Math.min(4, Math.max(1, hint(headers, 'sec-ch-dpr', /^[0-9]{1,2}(\.[0-9]{1,6})?$/) || 1));
    // A signed URL: whole multiples of what was signed, at most 4 boxes.
    if (signed) dpr = Math.ceil(dpr);
  }
  var width = null, height = null, quality = CONFIG.defaultQuality, fit = 'cover', crop = 'center';
  var presets = CONFIG.presets || {}, names = Object.keys(presets).join(', '), preset = null;
  if ('preset' in p) {
    preset = Object.prototype.hasOwnProperty.call(presets, p.preset) ? presets[p.preset] : null;
    if (!preset) fail('preset', 'one of ' + (names || 'none (this stack has no presets)'), p.preset);
    ['width', 'height', 'quality', 'fit', 'crop'].forEach(function (name) {
      if (name in p) fail(name, 'no ' + name + ' with preset=' + p.preset, p[name]);
    });
    width = Math.ceil(preset[0] * dpr); height = preset[1]; quality = preset[2]; fit = preset[3]; crop = preset[4];
  } else if (CONFIG.presetsOnly) {
    fail('preset', 'one of ' + names, '');
  } else {
    if ('width' in p) width = Math.ceil(integer('width', p.width, 'positive integer') * dpr);
    // A signed height fixes the box: no width hint for it.
    else if (hints && !(signed && 'height' in p)) {
      var hinted = hint(headers, 'sec-ch-width', /^[0-9]{1,5}$/);
      var viewport = hint(headers, 'sec-ch-viewport-width', /^[0-9]{1,5}$/);
      if (hinted !== null) width = hinted;
      else if (viewport !== null) width = Math.ceil(viewport * dpr);
    }
    if ('height' in p) height = integer('height', p.height, 'positive integer');
    if ('quality' in p) {
      quality = CONFIG.qualityAuto && p.quality.toLowerCase() === 'auto' ? 0 :
        integer('quality', p.quality, QN, 100);
    }
  }
  if (height !== null) height = Math.ceil(height * dpr);
  var fmt = 'format' in p ? p.format.toLowerCase() : 'auto';
  if (fmt === 'jpg') fmt = 'jpeg';
  if (fmt === 'auto') fmt = chooseFormat(accept);
  else if (CONFIG.formats.indexOf(fmt) < 0) fail('format', 'one of auto, ' + CONFIG.formats.join(', '), p.format);
  if (!preset) {
    fit = 'fit' in p ? p.fit.toLowerCase() : 'cover';
    if (FITS.indexOf(fit) < 0) fail('fit', 'one of ' + FITS.join(', '), p.fit);
    crop = 'crop' in p ? p.crop.toLowerCase() : 'center';
    allowedCrop(crop, p.crop);
  }
  return canonical(key, width || CONFIG.widths[CONFIG.widths.length - 1], height, quality, fmt, fit, crop);
}

// Signed URLs (edge/signing.py says what is signed): `optional` checks URLs that carry
// sig, `required` refuses the rest. Keys come from the KeyValueStore, two at a time.
async function verify(request) {
  var qs = request.querystring, sig = null;
  Object.keys(qs).forEach(function (name) {
    if (sig === null && name.toLowerCase() === 'sig') sig = qs[name].value;
  });
  var p = collect(qs, SIGNED);
  if (sig === null) {
    if (CONFIG.signing === 'required') fail('sig', 'a signed URL (kid, sig)', '', 403);
    return false;
  }
  var kid = p.kid || '', secret = null;
  if (/^[0-9]{1,6}$/.test(kid)) {
    try {
      secret = await cf.kvs().get('signing-key-' + kid);
    } catch (e) {
      secret = null;
    }
  }
  if (!secret) fail('kid', 'the id of a current signing key', kid, 403);
  if ('expires' in p) {
    if (!/^[0-9]{1,12}$/.test(p.expires)) fail('expires', 'Unix seconds', p.expires, 403);
    if (Date.now() / 1000 > +p.expires) fail('expires', 'an expiry in the future', p.expires, 403);
  }
  var message = 'v1\n' + decode(request.uri, 'path') + '\n' +
    Object.keys(p).sort().map(function (name) { return name + '=' + p[name]; }).join('&');
  var expected = require('crypto').createHmac('sha256', secret).update(message).digest('hex');
  var diff = sig.length === 64 && /^[0-9a-f]+$/.test(sig) ? 0 : 1;
  for (var i = 0; i < 64; i++) diff |= expected.charCodeAt(i) ^ sig.charCodeAt(i);
  if (diff) fail('sig', 'a valid signature for this URL', sig, 403);
  return true;
}

function answer(status, body) {
  var headers = {'content-type': {value: 'application/json'}, 'cache-control': {value: 'no-store'}};
  if (CONFIG.preflight) headers['access-control-allow-origin'] = {value: '*'};
  return {statusCode: status, statusDescription: status === 403 ? 'Forbidden' : 'Bad Request',
    headers: headers, body: {encoding: 'text', data: JSON.stringify(body)}};
}

async function handler(event) {
  var request = event.request;
  // corsOrigins ["*"]: the headers policy has no CORS section (it would own Vary), so
  // preflights are answered here; a list of origins is CloudFront's CORS section's job.
  if (request.method === 'OPTIONS' && CONFIG.preflight) {
    return {statusCode: 204, statusDescription: 'No Content', headers: {
      'access-control-allow-origin': {value: '*'},
      'access-control-allow-methods': {value: 'GET, HEAD, OPTIONS'},
      'access-control-allow-headers': {value: '*'}, 'access-control-max-age': {value: '86400'}}};
  }
  var headers = request.headers, qs = request.querystring || {};
  var accept = headers.accept;
  var acceptText = !accept ? '' : accept.multiValue
    ? accept.multiValue.map(function (v) { return v.value; }).join(',') : accept.value;
  var asked = request.uri;
  try {
    request.querystring = qs;
    var signed = CONFIG.signing ? await verify(request) : false;
    request.uri = normalize(asked, qs, acceptText, headers, signed);
  } catch (e) {
    if (!(e instanceof Problem)) throw e;
    return answer(e.status, e.body);
  }
  if (CONFIG.signing || CONFIG.presetsOnly) {
    // The URL as asked: where resize sends a viewer back (302) when a variant is too
    // large to return; the canonical path alone would not pass this function again.
    var query = Object.keys(qs).map(function (name) {
      return (qs[name].multiValue || [qs[name]]).map(function (v) { return name + '=' + v.value; }).join('&');
    }).join('&');
    headers['x-image-cdn-url'] = {value: asked + (query ? '?' + query : '')};
  }
  request.querystring = {};
  return request;
}
