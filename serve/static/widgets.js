// Small DOM helpers shared by the search and jobs tabs.

// An element with properties (className, textContent, ...) and children.
export function el(tag, props = {}, children = []) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

// Load a tab's own stylesheet (from /static/) once.
export function useStyles(name) {
  const href = `/static/${name}`;
  if (!document.querySelector(`link[href="${href}"]`)) {
    document.head.append(el("link", { rel: "stylesheet", href }));
  }
}
