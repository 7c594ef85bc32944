// The viewer function as it was before signed URLs, presets, DPR and client hints (issue 13),
// kept as the baseline `python -m bench` compares the per-call cost of edge/normalize.js with.
// Viewer-request CloudFront Function (cloudfront-js-2.0): every request becomes one
// canonical variant path, /<key>/w_<W>[_h_<H>]_q_<Q>[_fit_<F>].<fmt>, with the query
// cleared, so the cache key is the URI alone. Bad input is answered here with a 400
// JSON body and never forwarded. edge/variants.py is the Python twin; one table of
// cases (tests/cases/normalize.json) runs against both.
// Deploy replaces the CONFIG line below and nothing else.
var CONFIG = {"widths":[160,320,480,640,768,1024,1280,1600,1920,2560],"qualities":[40,50,60,70,80,90],"defaultQuality":60,"formats":["avif","webp","jpeg","png"],"preflight":true};

var SPEC = /^w_([1-9][0-9]{0,4})(?:_h_([1-9][0-9]{0,4}))?_q_([1-9][0-9]{0,2})(?:_fit_(cover|contain|inside|fill))?\.(avif|webp|jpeg|png)$/;
var FITS = ['cover', 'contain', 'inside', 'fill'];
var ALIASES = {w: 'width', width: 'width', h: 'height', height: 'height', q: 'quality',
  quality: 'quality', fm: 'format', format: 'format', fit: 'fit'};
// 1024 (S3) - "variants/" - the longest spec: room for every stored key.
var MAX_KEY_BYTES = 976;

function Problem(parameter, expected, received) {
  var text = String(received);
  if (text.length > 64) text = text.slice(0, 64) + '...';
  this.body = {error: 'InvalidParameter', parameter: parameter, expected: expected,
    received: JSON.stringify(text)};
  this.body.message = 'Expected ' + expected + ' for ' + parameter + ' but received ' + this.body.received;
}

function fail(parameter, expected, received) {
  throw new Problem(parameter, expected, received);
}

function decode(text, parameter) {
  if (/%(?![0-9A-Fa-f]{2})/.test(text)) fail(parameter, 'valid percent-encoding', text);
  try {
    return decodeURIComponent(text);
  } catch (e) {
    return fail(parameter, 'percent-encoded UTF-8', text);
  }
}

function encodeKey(key) {
  return key.split('/').map(encodeURIComponent).join('/');
}

function validKey(key) {
  if (key === '') fail('key', 'a non-empty image key', key);
  if (/[\u0000-\u001f\u007f-\u009f]/.test(key)) fail('key', 'a key without control characters', key);
  var segments = key.split('/');
  for (var i = 0; i < segments.length; i++) {
    if (segments[i] === '') fail('key', 'a key without empty segments', key);
    if (segments[i] === '.' || segments[i] === '..') fail('key', "a key without '.' or '..' segments", key);
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

// The canonical path of a (key, width, height, quality, format, fit) request.
function canonical(key, width, height, quality, fmt, fit) {
  var h = height === null ? null : snapWidth(height);
  var q = fmt === 'png' ? CONFIG.defaultQuality : snapQuality(quality);
  var spec = 'w_' + snapWidth(width) + (h === null ? '' : '_h_' + h) + '_q_' + q +
    (h !== null && fit !== 'cover' ? '_fit_' + fit : '') + '.' + fmt;
  return '/' + encodeKey(key) + '/' + spec;
}

function chooseFormat(accept) {
  var acceptable = {};
  accept.split(',').forEach(function (item) {
    var parts = item.split(';').map(function (p) { return p.replace(/^[ \t]+|[ \t]+$/g, '').toLowerCase(); });
    if (!parts.slice(1).some(function (p) { return /^q=0(\.0{0,3})?$/.test(p); })) acceptable[parts[0]] = true;
  });
  var order = ['avif', 'webp'];
  for (var i = 0; i < order.length; i++) {
    if (CONFIG.formats.indexOf(order[i]) >= 0 && acceptable['image/' + order[i]]) return order[i];
  }
  return CONFIG.formats.indexOf('jpeg') >= 0 ? 'jpeg' : CONFIG.formats[0];
}

function integer(parameter, value, expected, upper) {
  if (!/^[0-9]{1,9}$/.test(value) || +value === 0 || (upper && +value > upper)) fail(parameter, expected, value);
  return +value;
}

function normalize(uri, querystring, accept) {
  if (uri.charAt(0) !== '/') fail('path', "a path starting with '/'", uri);
  var cut = uri.lastIndexOf('/');
  var m = SPEC.exec(uri.slice(cut + 1));
  if (m && cut > 0) {
    // Already a variant path (e.g. the 302 resize answers for big bodies): snap it.
    var known = validKey(decode(uri.slice(1, cut), 'key'));
    allowedFormat(m[5], m[5]);
    return canonical(known, +m[1], m[2] ? +m[2] : null, +m[3], m[5], m[4] || 'cover');
  }
  var key = validKey(decode(uri.slice(1), 'key'));
  var p = {};
  Object.keys(querystring).forEach(function (name) {
    var lower = name.toLowerCase();
    var alias = Object.prototype.hasOwnProperty.call(ALIASES, lower) ? ALIASES[lower] : null;
    if (alias && !(alias in p)) p[alias] = decode(querystring[name].value, alias);
  });
  var width = 'width' in p ? integer('width', p.width, 'positive integer') : CONFIG.widths[CONFIG.widths.length - 1];
  var height = 'height' in p ? integer('height', p.height, 'positive integer') : null;
  var quality = 'quality' in p ? integer('quality', p.quality, 'integer between 1 and 100', 100) : CONFIG.defaultQuality;
  var fmt = 'format' in p ? p.format.toLowerCase() : 'auto';
  if (fmt === 'jpg') fmt = 'jpeg';
  if (fmt === 'auto') fmt = chooseFormat(accept);
  else if (CONFIG.formats.indexOf(fmt) < 0) fail('format', 'one of auto, ' + CONFIG.formats.join(', '), p.format);
  var fit = 'fit' in p ? p.fit.toLowerCase() : 'cover';
  if (FITS.indexOf(fit) < 0) fail('fit', 'one of ' + FITS.join(', '), p.fit);
  return canonical(key, width, height, quality, fmt, fit);
}

function handler(event) {
  var request = event.request;
  // corsOrigins ["*"]: the headers policy has no CORS section (it would own Vary), so
  // preflights are answered here; a list of origins is CloudFront's CORS section's job.
  if (request.method === 'OPTIONS' && CONFIG.preflight) {
    return {statusCode: 204, statusDescription: 'No Content', headers: {
      'access-control-allow-origin': {value: '*'},
      'access-control-allow-methods': {value: 'GET, HEAD, OPTIONS'},
      'access-control-allow-headers': {value: '*'}, 'access-control-max-age': {value: '86400'}}};
  }
  var accept = request.headers.accept;
  var acceptText = !accept ? '' : accept.multiValue
    ? accept.multiValue.map(function (v) { return v.value; }).join(',') : accept.value;
  try {
    request.uri = normalize(request.uri, request.querystring || {}, acceptText);
  } catch (e) {
    if (!(e instanceof Problem)) throw e;
    var headers = {'content-type': {value: 'application/json'}, 'cache-control': {value: 'no-store'}};
    if (CONFIG.preflight) headers['access-control-allow-origin'] = {value: '*'};
    return {
      statusCode: 400,
      statusDescription: 'Bad Request',
      headers: headers,
      body: {encoding: 'text', data: JSON.stringify(e.body)}
    };
  }
  request.querystring = {};
  return request;
}
