// llm_magic's live timeline, as each run's widget loads it: the timeline's module and CSS come
// once per kernel from one shared model (`assets`), not with every run's widget. The module is
// imported once per page and model; its CSS goes into the page once.
const MODULES = (globalThis.__llmMagicTimelineModules ??= new Map());

function load(model) {
  const id = String(model.get("assets") || "").replace(/^IPY_MODEL_/, "");
  if (!MODULES.has(id)) {
    const loading = (async () => {
      const assets = await model.widget_manager.get_model(id);
      const style = document.createElement("style");
      style.dataset.llmMagicTimeline = id;
      style.textContent = assets.get("css");
      document.head.appendChild(style);
      const url = URL.createObjectURL(new Blob([assets.get("esm")], { type: "text/javascript" }));
      try {
        return (await import(url)).default;
      } finally {
        URL.revokeObjectURL(url);
      }
    })();
    loading.catch(() => MODULES.delete(id)); // a later view tries again
    MODULES.set(id, loading);
  }
  return MODULES.get(id);
}

export default {
  async render(context) {
    const timeline = await load(context.model);
    return timeline.render(context);
  },
};
