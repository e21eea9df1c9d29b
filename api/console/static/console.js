// Ledgerline console: the little the pages need from JavaScript. Everything else is HTML.
//
// 1. Inclusion proofs (event page): the leaf hash is computed HERE from the event's canonical
//    bytes (SHA-256 of 0x00 || bytes), the proof fetched from /v1/proofs/inclusion, and the
//    RFC 9162 section 2.1.3.2 algorithm run with WebCrypto SHA-256; the result must equal the
//    root of the latest signed checkpoint fetched from /v1/checkpoints/latest.
// 2. Consistency proofs (checkpoints page): RFC 9162 section 2.1.4.2, same hash.
// 3. Forms with data-confirm ask before they submit.
"use strict";

(function () {
  function hexToBytes(hex) {
    if (hex.length % 2 !== 0 || /[^0-9a-f]/i.test(hex)) throw new Error("bad hex");
    const out = new Uint8Array(hex.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
    return out;
  }

  function bytesToHex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }

  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }

  const NODE = Uint8Array.of(1);
  const LEAF = Uint8Array.of(0);
  const node = (left, right) => sha256(concat(NODE, left, right));

  function equal(a, b) {
    return a.length === b.length && a.every((x, i) => x === b[i]);
  }

  // RFC 9162 2.1.3.2: the root that `proof` leads to from leaf `index` of a tree of `size`.
  async function rootFromInclusion(index, size, leafHash, proof) {
    let fn = BigInt(index);
    let sn = BigInt(size) - 1n;
    if (fn > sn) throw new Error("the leaf index is not below the tree size");
    let r = leafHash;
    for (const p of proof) {
      if (sn === 0n) throw new Error("the proof is longer than the tree is deep");
      if ((fn & 1n) === 1n || fn === sn) {
        r = await node(p, r);
        while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      } else {
        r = await node(r, p);
      }
      fn >>= 1n; sn >>= 1n;
    }
    if (sn !== 0n) throw new Error("the proof is shorter than the tree is deep");
    return r;
  }

  // RFC 9162 2.1.4.2: true when `proof` shows tree `first` (root firstRoot) is a prefix of
  // tree `second` (root secondRoot).
  async function checkConsistency(first, second, proof, firstRoot, secondRoot) {
    let f = BigInt(first), s = BigInt(second);
    if (f > s) throw new Error("the older size is larger than the newer");
    if (f === s) {
      if (proof.length !== 0) throw new Error("equal sizes need an empty proof");
      return equal(firstRoot, secondRoot);
    }
    if (proof.length === 0) throw new Error("the proof is empty");
    let path = proof.slice();
    if ((f & (f - 1n)) === 0n) path = [firstRoot, ...path];
    let fn = f - 1n, sn = s - 1n;
    while ((fn & 1n) === 1n) { fn >>= 1n; sn >>= 1n; }
    let fr = path[0], sr = path[0];
    for (const c of path.slice(1)) {
      if (sn === 0n) throw new Error("the proof is longer than the tree is deep");
      if ((fn & 1n) === 1n || fn === sn) {
        fr = await node(c, fr);
        sr = await node(c, sr);
        while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      } else {
        sr = await node(sr, c);
      }
      fn >>= 1n; sn >>= 1n;
    }
    return sn === 0n && equal(fr, firstRoot) && equal(sr, secondRoot);
  }

  function say(box, ok, text) {
    box.textContent = "";
    const p = document.createElement("p");
    p.className = "alert " + (ok ? "ok" : "bad");
    p.dataset.result = ok ? "verified" : "failed";
    const mark = document.createElement("span");
    mark.setAttribute("aria-hidden", "true");
    mark.textContent = ok ? "✓ " : "✗ ";
    p.append(mark, text);
    box.append(p);
  }

  async function getJson(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    const body = await response.json();
    if (!response.ok) throw new Error(`${url}: ${body.code || response.status}: ${body.detail || ""}`);
    return body;
  }

  function needCrypto(box) {
    if (window.crypto && crypto.subtle) return true;
    say(box, false, "This browser offers no WebCrypto here: it is only available on https or localhost origins.");
    return false;
  }

  async function verifyInclusion(button) {
    const box = document.getElementById("proof-result");
    if (!needCrypto(box)) return;
    button.disabled = true;
    box.textContent = "Checking…";
    try {
      const position = Number(button.dataset.position);
      const checkpoint = await getJson("/v1/checkpoints/latest");
      if (checkpoint.size < position) throw new Error(`the latest checkpoint (size ${checkpoint.size}) does not cover position ${position}`);
      const proof = await getJson(`/v1/proofs/inclusion?position=${position}&size=${checkpoint.size}`);
      const leaf = await sha256(concat(LEAF, hexToBytes(button.dataset.eventBytes)));
      if (bytesToHex(leaf) !== proof.leaf_hash) throw new Error("the server's leaf hash differs from the one computed from this event's bytes");
      const root = await rootFromInclusion(position - 1, checkpoint.size, leaf, proof.proof.map(hexToBytes));
      if (!equal(root, hexToBytes(checkpoint.root_hex))) throw new Error("the proof does not lead to the checkpoint's root");
      say(box, true, `Verified in this browser: event ${position} is leaf ${position - 1} of the signed tree of size ${checkpoint.size} (root ${checkpoint.root_hex.slice(0, 16)}…), via ${proof.proof.length} hashes.`);
    } catch (err) {
      say(box, false, `Not verified: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  }

  async function verifyConsistency(button) {
    const box = document.getElementById("consistency-result");
    if (!needCrypto(box)) return;
    try {
      const proof = button.dataset.proof ? button.dataset.proof.split(",").map(hexToBytes) : [];
      const ok = await checkConsistency(
        Number(button.dataset.from), Number(button.dataset.to), proof,
        hexToBytes(button.dataset.fromRoot), hexToBytes(button.dataset.toRoot));
      say(box, ok, ok
        ? `Verified in this browser: the tree of size ${button.dataset.from} is a prefix of the tree of size ${button.dataset.to}.`
        : "Not verified: the proof does not tie the two signed roots together.");
    } catch (err) {
      say(box, false, `Not verified: ${err.message}`);
    }
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.id === "verify-inclusion") verifyInclusion(button);
    if (button.id === "verify-consistency") verifyConsistency(button);
  });

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });
})();
