// trimicro web dashboard: the live services list and the call forms.
// Everything from the server is written as text (textContent), never as markup.
"use strict";

(function () {
  const live = document.getElementById("live");

  function setLive(state) {
    if (live) {
      live.dataset.state = state;
      live.textContent = state;
    }
  }

  // -- the services list, kept live from /ws/registry --------------------------------------

  function serviceItem(name, versions) {
    const item = document.createElement("li");
    item.dataset.name = name;
    const link = document.createElement("a");
    link.href = "/service/" + encodeURIComponent(name);
    link.textContent = name;
    const span = document.createElement("span");
    span.className = "versions";
    span.textContent = [...versions].sort().join(", ");
    item.append(link, " ", span);
    return item;
  }

  function followRegistry(list) {
    const services = new Map(); // name -> Set of versions
    let delay = 500;

    function render() {
      const names = [...services.keys()].sort();
      list.replaceChildren(...names.map((name) => serviceItem(name, services.get(name))));
      const empty = document.getElementById("no-services");
      if (empty) empty.hidden = names.length > 0;
    }

    function apply(message) {
      if (message.type === "snapshot") {
        services.clear();
        for (const s of message.services) services.set(s.name, new Set(s.versions));
      } else if (message.type === "event") {
        const versions = services.get(message.name) || new Set();
        if (message.action === "delete" || message.nodes === 0) versions.delete(message.version);
        else versions.add(message.version);
        if (versions.size) services.set(message.name, versions);
        else services.delete(message.name);
      } else {
        return;
      }
      render();
    }

    function connect() {
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      const socket = new WebSocket(scheme + "//" + location.host + "/ws/registry");
      setLive("connecting");
      socket.onmessage = (event) => {
        let message;
        try {
          message = JSON.parse(event.data);
        } catch (err) {
          return;
        }
        apply(message);
        if (message.type === "snapshot") {
          delay = 500;
          setLive("live");
        }
      };
      // Closed by the server (it fell behind, or the registry watch broke) or by the
      // network: reconnect with backoff; the next snapshot replaces whatever was missed.
      socket.onclose = () => {
        setLive("offline");
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 10000);
      };
    }

    connect();
  }

  // -- call forms: POST /api/call, show the reply or the error with its status -------------

  function attachCall(form) {
    const result = form.nextElementSibling;
    const status = result.querySelector(".status");
    const reply = result.querySelector(".reply");
    const button = form.querySelector("button");

    function show(state, head, text) {
      result.hidden = false;
      result.dataset.state = state;
      status.textContent = head;
      reply.textContent = text;
    }

    async function call() {
      let request;
      try {
        request = JSON.parse(form.elements.request.value || "null");
      } catch (err) {
        show("error", "invalid JSON", err.message);
        return;
      }
      const body = { service: form.dataset.service, endpoint: form.dataset.endpoint, request };
      const timeout = parseFloat(form.elements.timeout.value);
      if (timeout > 0) body.timeout = timeout;
      show("pending", "calling…", "");
      const response = await fetch("/api/call", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      const text = await response.text();
      let shown = text;
      try {
        shown = JSON.stringify(JSON.parse(text), null, 2);
      } catch (err) {
        // not JSON: shown as it came
      }
      const head = String(response.status) + (response.statusText ? " " + response.statusText : "");
      show(response.ok ? "ok" : "error", head, shown);
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      button.disabled = true;
      try {
        await call();
      } catch (err) {
        show("error", "network error", String(err));
      } finally {
        button.disabled = false;
      }
    });
  }

  const list = document.getElementById("services");
  if (list) followRegistry(list);
  document.querySelectorAll("form.call").forEach(attachCall);
})();
