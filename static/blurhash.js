// Blurhash placeholders: each .thumb[data-blurhash] paints its hash on a small canvas, shown
// until the real image has loaded. The decoder follows the reference algorithm (woltapp/blurhash).
(function () {
  "use strict";
  var CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";

  function decode83(str) {
    var value = 0;
    for (var i = 0; i < str.length; i++) {
      var digit = CHARS.indexOf(str[i]);
      if (digit < 0) throw new Error("bad blurhash");
      value = value * 83 + digit;
    }
    return value;
  }
  function toLinear(v) {
    var x = v / 255;
    return x <= 0.04045 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4);
  }
  function toSrgb(v) {
    var x = Math.max(0, Math.min(1, v));
    return Math.round((x <= 0.0031308 ? x * 12.92 : 1.055 * Math.pow(x, 1 / 2.4) - 0.055) * 255);
  }
  function signPow(v, e) { return (v < 0 ? -1 : 1) * Math.pow(Math.abs(v), e); }

  function decode(hash, width, height) {
    var size = decode83(hash[0]);
    var nx = (size % 9) + 1;
    var ny = Math.floor(size / 9) + 1;
    if (hash.length !== 4 + 2 * nx * ny) throw new Error("bad blurhash length");
    var maxValue = (decode83(hash[1]) + 1) / 166;
    var colors = [];
    var dc = decode83(hash.substring(2, 6));
    colors.push([toLinear(dc >> 16), toLinear((dc >> 8) & 255), toLinear(dc & 255)]);
    for (var i = 1; i < nx * ny; i++) {
      var ac = decode83(hash.substring(4 + i * 2, 6 + i * 2));
      var r = Math.floor(ac / 361), g = Math.floor(ac / 19) % 19, b = ac % 19;
      colors.push([signPow((r - 9) / 9, 2) * maxValue, signPow((g - 9) / 9, 2) * maxValue,
        signPow((b - 9) / 9, 2) * maxValue]);
    }
    var pixels = new Uint8ClampedArray(width * height * 4);
    for (var y = 0; y < height; y++) {
      for (var x = 0; x < width; x++) {
        var rgb = [0, 0, 0];
        for (var j = 0; j < ny; j++) {
          for (var k = 0; k < nx; k++) {
            var basis = Math.cos(Math.PI * x * k / width) * Math.cos(Math.PI * y * j / height);
            var c = colors[k + j * nx];
            rgb[0] += c[0] * basis; rgb[1] += c[1] * basis; rgb[2] += c[2] * basis;
          }
        }
        var p = 4 * (x + y * width);
        pixels[p] = toSrgb(rgb[0]); pixels[p + 1] = toSrgb(rgb[1]);
        pixels[p + 2] = toSrgb(rgb[2]); pixels[p + 3] = 255;
      }
    }
    return pixels;
  }

  function paint(thumb) {
    var canvas = thumb.querySelector("canvas");
    var img = thumb.querySelector("img");
    if (!canvas || !img) return;
    var loaded = function () { thumb.classList.add("is-loaded"); };
    if (img.complete && img.naturalWidth) { loaded(); return; }
    img.addEventListener("load", loaded);
    img.addEventListener("error", function () { thumb.classList.add("is-broken"); });
    try {
      var pixels = decode(thumb.dataset.blurhash || "", canvas.width, canvas.height);
      var ctx = canvas.getContext("2d");
      var data = ctx.createImageData(canvas.width, canvas.height);
      data.data.set(pixels);
      ctx.putImageData(data, 0, 0);
      thumb.classList.add("has-hash");
    } catch (e) {
      // No usable hash: the neutral background shows instead.
    }
  }

  window.ecogramBlurhash = { decode: decode };
  Array.prototype.forEach.call(document.querySelectorAll(".thumb[data-blurhash]"), paint);
})();
