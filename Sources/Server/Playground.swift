import Foundation
import Relay

/// `GET /`: one self-contained page (no external files) that streams a chat completion and
/// colours each piece by the model that wrote it, with the telemetry of the last chunk.
enum Playground {
    static func html(models: [String], defaultMode: String, needsKey: Bool) -> String {
        let modes = Mode.names.map { "<option\($0 == defaultMode ? " selected" : "")>\($0)</option>" }.joined()
        let modelOptions = models.map { "<option>\(escape($0))</option>" }.joined()
        return page
            .replacingOccurrences(of: "{{MODES}}", with: modes)
            .replacingOccurrences(of: "{{MODELS}}", with: modelOptions)
            .replacingOccurrences(of: "{{KEY_STYLE}}", with: needsKey ? "" : "display:none")
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    static let page = #"""
    <!doctype html>
    <html lang="en"><head><meta charset="utf-8"><title>Relay playground</title>
    <style>
    body { font: 15px/1.5 system-ui, sans-serif; margin: 2em auto; max-width: 60em; padding: 0 1em; color: #222; }
    h1 { font-size: 1.4em; margin-bottom: .2em; }
    textarea { width: 100%; height: 6em; font: inherit; box-sizing: border-box; }
    .row { display: flex; gap: 1em; align-items: center; margin: .6em 0; flex-wrap: wrap; }
    #out { white-space: pre-wrap; border: 1px solid #ccc; border-radius: 4px; padding: .8em; min-height: 8em; background: #fafafa; }
    .large { color: #1a3fb0; } .small { color: #0a7a2a; background: #e6f6ea; }
    .legend span { padding: 0 .4em; border-radius: 3px; }
    table { border-collapse: collapse; margin-top: .8em; } td { padding: .15em .8em .15em 0; } td:first-child { color: #666; }
    #err { color: #b00020; }
    </style></head><body>
    <h1>Relay playground</h1>
    <div class="legend">Text is coloured by the model that wrote it: <span class="large">large model</span> <span class="small">small model</span></div>
    <textarea id="prompt">What is 17 * 23? Explain step by step.</textarea>
    <div class="row">
      <label>model <select id="model">{{MODELS}}</select></label>
      <label>mode <select id="mode">{{MODES}}</select></label>
      <label>max tokens <input id="max" type="number" value="128" min="1" style="width:5em"></label>
      <label>temperature <input id="temp" type="number" value="0" min="0" max="2" step="0.1" style="width:4em"></label>
      <label style="{{KEY_STYLE}}">API key <input id="key" type="password"></label>
      <button id="go">Generate</button> <button id="stop" disabled>Stop</button>
    </div>
    <div id="out"></div>
    <div id="err"></div>
    <table id="stats"></table>
    <script>
    const $ = id => document.getElementById(id);
    let controller = null;
    function stat(rows) {
      $("stats").innerHTML = rows.map(([k, v]) => `<tr><td>${k}</td><td>${v}</td></tr>`).join("");
    }
    function telemetry(r, pieces, seconds) {
      const pct = x => (100 * x).toFixed(1) + "%";
      stat([["mode", r.mode], ["tokens (large / small)", `${r.tokens.large} / ${r.tokens.small}`], ["large-model share", pct(r.large_share)],
            ["hand-overs", r.handovers], ["drafted / accepted", `${r.drafted} / ${r.accepted}` + (r.acceptance_rate == null ? "" : ` (${pct(r.acceptance_rate)})`)],
            ["finish", r.finish_reason], ["seconds", r.seconds.toFixed(2)]].concat(r.large_failure ? [["large model failed", r.large_failure]] : []));
    }
    async function generate() {
      $("out").textContent = ""; $("err").textContent = ""; stat([]);
      controller = new AbortController();
      $("go").disabled = true; $("stop").disabled = false;
      const started = performance.now();
      let tokens = 0;
      const headers = {"Content-Type": "application/json"};
      if ($("key").value) headers["Authorization"] = "Bearer " + $("key").value;
      try {
        const res = await fetch("/v1/chat/completions", {method: "POST", headers, signal: controller.signal, body: JSON.stringify({
          model: $("model").value, relay_mode: $("mode").value, stream: true, max_tokens: +$("max").value,
          temperature: +$("temp").value, messages: [{role: "user", content: $("prompt").value}]})});
        if (!res.ok) { const e = await res.json(); throw new Error(`${res.status}: ${e.error.message}`); }
        const reader = res.body.getReader(), decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const {value, done} = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, {stream: true});
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const line = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
            if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
            const chunk = JSON.parse(line.slice(6));
            if (chunk.error) throw new Error(chunk.error.message);
            const text = chunk.choices.length ? chunk.choices[0].delta.content : null;
            if (text) {
              const span = document.createElement("span");
              span.className = chunk.relay_role; span.textContent = text; $("out").appendChild(span);
              tokens++;
              stat([["streaming", `${tokens} pieces, ${((performance.now() - started) / 1000).toFixed(1)} s`]]);
            }
            if (chunk.relay) telemetry(chunk.relay);
          }
        }
      } catch (e) {
        if (e.name !== "AbortError") $("err").textContent = e.message;
      }
      $("go").disabled = false; $("stop").disabled = true;
    }
    $("go").onclick = generate;
    // ?mode=...&prompt=...&run=1 fills the form and starts, for links and headless checks.
    const query = new URLSearchParams(location.search);
    if (query.get("mode")) $("mode").value = query.get("mode");
    if (query.get("prompt")) $("prompt").value = query.get("prompt");
    if (query.get("run")) generate();
    $("stop").onclick = () => controller && controller.abort();
    </script></body></html>
    """#
}
