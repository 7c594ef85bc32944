// What CloudFront Functions (cloudfront-js-2.0) give a function and a bare V8 does not,
// modelled for the emulator and the tests. A stand-in, not AWS's code:
// - `import cf from 'cloudfront'` ("Helper methods for key value stores"): cf.kvs() with
//   get(key, {format}) (a promise; rejects when the key does not exist), exists(key) and
//   meta(); the keys are pushed in from the emulator's KeyValueStore model.
// - require('crypto') ("JavaScript runtime features": createHash and createHmac, digest
//   with an encoding; here sha256 only, hex and base64), strings hashed as UTF-8.
// - Date.now() follows the emulator's clock when it has been moved.
// tests/test_signing.py checks the SHA-256 and HMAC here against Python's hashlib.
var __kvsData = {};
var __kvsMeta = {creationDateTime: '2026-01-01T00:00:00Z', lastUpdatedDateTime: '2026-01-01T00:00:00Z', keyCount: 0};
var __clock = null;
var __realNow = Date.now;
Date.now = function () { return __clock === null ? __realNow() : __clock; };

var __cloudfront = {
  kvs: function () {
    return {
      get: async function (key, options) {
        if (!Object.prototype.hasOwnProperty.call(__kvsData, key)) throw new Error('Key ' + key + ' not found');
        var value = __kvsData[key];
        return options && options.format === 'json' ? JSON.parse(value) : value;
      },
      exists: async function (key) { return Object.prototype.hasOwnProperty.call(__kvsData, key); },
      meta: async function () { return __kvsMeta; }
    };
  }
};

var __sha256 = (function () {
  var K = [];
  (function () {
    var found = 0, n = 2;
    function frac(x) { return ((x - Math.floor(x)) * 4294967296) | 0; }
    while (found < 64) {
      var prime = true;
      for (var d = 2; d * d <= n; d++) if (n % d === 0) { prime = false; break; }
      if (prime) K[found++] = frac(Math.pow(n, 1 / 3));
      n++;
    }
  })();
  var H0 = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
  function rotr(x, n) { return (x >>> n) | (x << (32 - n)); }
  return function (bytes) {
    var length = bytes.length, padded = ((length + 9 + 63) >> 6) << 6;
    var m = new Uint8Array(padded);
    m.set(bytes);
    m[length] = 0x80;
    var bits = length * 8;
    for (var i = 0; i < 8; i++) m[padded - 1 - i] = Math.floor(bits / Math.pow(2, 8 * i)) & 0xff;
    var h = H0.slice(), w = new Int32Array(64);
    for (var off = 0; off < padded; off += 64) {
      for (var t = 0; t < 16; t++) {
        w[t] = (m[off + 4 * t] << 24) | (m[off + 4 * t + 1] << 16) | (m[off + 4 * t + 2] << 8) | m[off + 4 * t + 3];
      }
      for (t = 16; t < 64; t++) {
        var s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >>> 3);
        var s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >>> 10);
        w[t] = (w[t - 16] + s0 + w[t - 7] + s1) | 0;
      }
      var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
      for (t = 0; t < 64; t++) {
        var S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25), ch = (e & f) ^ (~e & g);
        var t1 = (hh + S1 + ch + K[t] + w[t]) | 0;
        var S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22), maj = (a & b) ^ (a & c) ^ (b & c);
        var t2 = (S0 + maj) | 0;
        hh = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
      }
      h[0] = (h[0] + a) | 0; h[1] = (h[1] + b) | 0; h[2] = (h[2] + c) | 0; h[3] = (h[3] + d) | 0;
      h[4] = (h[4] + e) | 0; h[5] = (h[5] + f) | 0; h[6] = (h[6] + g) | 0; h[7] = (h[7] + hh) | 0;
    }
    var out = new Uint8Array(32);
    for (i = 0; i < 8; i++) for (var j = 0; j < 4; j++) out[4 * i + j] = (h[i] >>> (24 - 8 * j)) & 0xff;
    return out;
  };
})();

function __utf8(text) {
  if (typeof text !== 'string') return new Uint8Array(text);
  var bytes = [];
  for (var i = 0; i < text.length; i++) {
    var c = text.codePointAt(i);
    if (c > 0xffff) i++;
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd; // a lone surrogate, as Node's encoder does
    if (c < 0x80) bytes.push(c);
    else if (c < 0x800) bytes.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) bytes.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else bytes.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return new Uint8Array(bytes);
}

function __concat(parts) {
  var total = 0;
  parts.forEach(function (p) { total += p.length; });
  var out = new Uint8Array(total), at = 0;
  parts.forEach(function (p) { out.set(p, at); at += p.length; });
  return out;
}

function __encode(bytes, encoding) {
  if (encoding === 'hex') {
    return Array.prototype.map.call(bytes, function (b) { return (b < 16 ? '0' : '') + b.toString(16); }).join('');
  }
  if (encoding === undefined) return bytes;
  throw new Error('digest encoding not modelled: ' + encoding);
}

var __crypto = {
  createHash: function (algorithm) {
    if (algorithm !== 'sha256') throw new Error('hash not modelled: ' + algorithm);
    var parts = [];
    return {
      update: function (data) { parts.push(__utf8(data)); return this; },
      digest: function (encoding) { return __encode(__sha256(__concat(parts)), encoding); }
    };
  },
  createHmac: function (algorithm, key) {
    if (algorithm !== 'sha256') throw new Error('hmac not modelled: ' + algorithm);
    var k = __utf8(key);
    if (k.length > 64) k = __sha256(k);
    var block = new Uint8Array(64);
    block.set(k);
    var inner = block.map(function (b) { return b ^ 0x36; }), outer = block.map(function (b) { return b ^ 0x5c; });
    var parts = [inner];
    return {
      update: function (data) { parts.push(__utf8(data)); return this; },
      digest: function (encoding) {
        return __encode(__sha256(__concat([outer, __sha256(__concat(parts))])), encoding);
      }
    };
  }
};

function require(name) {
  if (name === 'crypto') return __crypto;
  throw new Error('module not modelled: ' + name);
}
