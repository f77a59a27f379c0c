// Evidence: build a signed pack for an alert, decision, threat or sensor,
// download it, and how to verify it offline.

import { call, request } from "../api.js";
import { clear, field, h, notify, page, problemText, table, time } from "../ui.js";

async function download(pack) {
  const response = await request("GET", `/api/export/packs/${pack.id}`, { raw: true });
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: `vigil-pack-${pack.id}.zip` });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

export async function evidencePage(ctx) {
  const tbody = h("tbody");
  const progress = h("p", { role: "status", class: "muted" });

  async function load() {
    const data = await call("GET", "/api/export/packs", { query: { limit: 50 } });
    clear(
      tbody,
      data.packs.map((p) =>
        h(
          "tr",
          {},
          h("td", {}, time(p.created_at)),
          h("td", {}, `${p.subject.kind} ${p.subject.id}`),
          h("td", {}, p.created_by),
          h("td", { class: "num" }, `${Math.ceil(p.size / 1024)} KiB`),
          h("td", {}, h("code", { title: p.manifest_sha256 }, (p.manifest_sha256 || "").slice(0, 12))),
          h("td", {}, h("button", { type: "button", class: "secondary", onclick: () => download(p).catch((e) => notify(problemText(e), "error")) }, "Download")),
        ),
      ),
    );
  }

  const subject = h("select", { name: "subject" }, ["alert", "decision", "threat", "sensor"].map((s) => h("option", { value: s, selected: s === (ctx.params.get("subject") || "alert") }, s)));
  const id = h("input", { name: "id", required: true, value: ctx.params.get("id") || "" });
  const form = h("form", { class: "filters" }, field("Subject", subject), field("Id", id), h("button", { type: "submit" }, "Build pack"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    progress.textContent = "Building and signing the pack…";
    form.querySelector("button").disabled = true;
    try {
      const pack = await call("POST", "/api/export/packs", { body: { subject: subject.value, id: id.value.trim() } });
      progress.textContent = `Pack built: ${pack.files} files, ${pack.events} events, ${Math.ceil(pack.size / 1024)} KiB; downloading.`;
      await download(pack);
      await load();
    } catch (err) {
      progress.textContent = "";
      notify(problemText(err), "error");
    } finally {
      form.querySelector("button").disabled = false;
    }
  });

  await load();
  return page(
    "Evidence",
    form,
    progress,
    h("div", { class: "scroll" }, table(["Built", "Subject", "By", "Size", "Manifest", ""], tbody, "Evidence packs, newest first")),
    h(
      "section",
      {},
      h("h2", {}, "Verifying a pack"),
      h("p", {}, "A pack is a ZIP with the record, its events, decisions, audit entries, a readable report.md and manifest.json, which lists every file's SHA-256 and is signed (Ed25519). Anyone can check it offline with the export public keys:"),
      h("pre", {}, `curl -s ${location.origin}/api/export/keys > keys.json\nvigil verify vigil-pack-<id>.zip --key keys.json`),
      h("p", {}, "It prints VERIFIED when the signature is good and every file matches the manifest, and names the first file that does not otherwise. Each build and download is recorded in the audit log (chain of custody)."),
    ),
  );
}
