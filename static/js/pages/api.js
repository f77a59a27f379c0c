// API reference: the app's own OpenAPI document (/api/openapi.json) as a
// readable list of operations, grouped by area, with each one's permission,
// request body and statuses. (A full viewer such as Swagger UI would add
// about 1 MB to the console; the document itself is linked for tools.)

import { h, page } from "../ui.js";

function schemaName(s) {
  if (!s) return null;
  if (s.$ref) return s.$ref.split("/").pop();
  if (s.type === "array") return `[${schemaName(s.items)}]`;
  return s.type || "object";
}

export async function apiPage() {
  const doc = await (await fetch("/api/openapi.json")).json();
  const groups = new Map();
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      if (!["get", "post", "put", "patch", "delete"].includes(method)) continue;
      const area = path.split("/")[2] || path.split("/")[1] || "other";
      if (!groups.has(area)) groups.set(area, []);
      groups.get(area).push({ path, method, op });
    }
  }
  const filter = h("input", { type: "search", id: "api-filter", placeholder: "Filter operations" });
  const list = h(
    "div",
    { class: "api" },
    [...groups].map(([area, ops]) =>
      h(
        "section",
        {},
        h("h2", {}, area),
        ops.map(({ path, method, op }) => {
          const body = op.requestBody?.content?.["application/json"]?.schema;
          return h(
            "details",
            { class: "op", dataset: { text: `${method} ${path} ${op.summary || ""}`.toLowerCase() } },
            h("summary", {}, h("span", { class: `method ${method}` }, method.toUpperCase()), " ", h("code", {}, path), " — ", op.summary || ""),
            h(
              "dl",
              {},
              h("dt", {}, "Permission"),
              h("dd", {}, op["x-vigil-permission"] || "public"),
              body ? [h("dt", {}, "Request body"), h("dd", {}, h("code", {}, schemaName(body)))] : null,
              h("dt", {}, "Responses"),
              h("dd", {}, Object.entries(op.responses || {}).map(([status, r]) => h("div", {}, h("code", {}, status), " ", r.description || ""))),
            ),
          );
        }),
      ),
    ),
  );
  filter.addEventListener("input", () => {
    const q = filter.value.toLowerCase();
    for (const d of list.querySelectorAll("details.op")) d.hidden = q && !d.dataset.text.includes(q);
  });
  return page(
    "API reference",
    h("p", {}, `${doc.info?.title || "Vigil"} ${doc.info?.version || ""} — OpenAPI ${doc.openapi}. The document itself: `, h("a", { href: "/api/openapi.json" }, "/api/openapi.json"), " (point a client generator at it)."),
    h("label", { for: "api-filter" }, "Filter "),
    filter,
    list,
  );
}
