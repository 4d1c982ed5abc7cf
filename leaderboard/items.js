// The item browser: pick a task and a role, search the questions, open an item to read the
// question, the references, RoleGPT's answer and every model's answer with its score and the
// judges' verdicts; a conversation (rolebench-eval converse) shows each model's turns side by side.
// The data is window.ROLEBENCH_ITEMS (items-data.js, next to this page).
// Every string from the data goes into the page as textContent: nothing in it is ever markup.
(function () {
  "use strict";
  var data = window.ROLEBENCH_ITEMS;
  var $ = function (id) { return document.getElementById(id); };
  if (!data) {
    $("detail").textContent = "items-data.js was not found next to items.html: copy both files together.";
    return;
  }
  var LIST_MAX = 400;
  var state = { task: "", role: "", q: "", item: -1, model: "" };
  var tasks = {};
  data.tasks.forEach(function (t) { tasks[t.name] = t; });

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function option(select, value, label) {
    var o = el("option", null, label);
    o.value = value;
    select.appendChild(o);
  }

  function readHash() {
    var params = new URLSearchParams(location.hash.replace(/^#/, ""));
    state.task = params.get("task") || "";
    state.role = params.get("role") || "";
    state.q = params.get("q") || "";
    state.model = params.get("model") || "";
    var item = parseInt(params.get("item") || "-1", 10);
    state.item = isNaN(item) ? -1 : item;
  }

  function writeHash() {
    var params = new URLSearchParams();
    ["task", "role", "q", "model"].forEach(function (k) { if (state[k]) { params.set(k, state[k]); } });
    if (state.item >= 0) { params.set("item", String(state.item)); }
    history.replaceState(null, "", "#" + params.toString());
  }

  function matches(item) {
    if (state.task && item.task !== state.task) { return false; }
    if (state.role && data.roles[item.role] !== state.role) { return false; }
    if (state.q && item.question.toLowerCase().indexOf(state.q.toLowerCase()) < 0) { return false; }
    return true;
  }

  function fillRoles() {
    var select = $("role");
    var current = state.role;
    while (select.firstChild) { select.removeChild(select.firstChild); }
    var counts = {};
    data.items.forEach(function (item) {
      if (!state.task || item.task === state.task) {
        var name = data.roles[item.role];
        counts[name] = (counts[name] || 0) + 1;
      }
    });
    var names = Object.keys(counts).sort();
    option(select, "", "all roles (" + names.length + ")");
    names.forEach(function (name) { option(select, name, name + " (" + counts[name] + ")"); });
    select.value = counts[current] ? current : "";
    state.role = select.value;
  }

  function score(value, metric) {
    return value === null || value === undefined ? "–" : metric.toUpperCase() + " " + Number(value).toFixed(3);
  }

  function renderList() {
    var list = $("list");
    while (list.firstChild) { list.removeChild(list.firstChild); }
    var shown = 0, total = 0;
    data.items.forEach(function (item, index) {
      if (!matches(item)) { return; }
      total += 1;
      if (shown >= LIST_MAX) { return; }
      shown += 1;
      var li = el("li", index === state.item ? "current" : "");
      var button = el("button");
      button.type = "button";
      button.appendChild(el("span", "meta", data.roles[item.role] + " · " + tasks[item.task].label +
                                            (item.depth ? " · depth " + item.depth : "")));
      button.appendChild(el("span", "q", item.question));
      button.addEventListener("click", function () { state.item = index; update(); });
      li.appendChild(button);
      list.appendChild(li);
    });
    $("count").textContent = total + " item" + (total === 1 ? "" : "s") +
      (total > shown ? " (first " + shown + " listed; narrow the search)" : "");
  }

  function answerCard(answer, item) {
    var model = data.models[answer.model];
    var card = el("article", "answer" + (model.name === state.model ? " chosen" : ""));
    var head = el("header");
    head.appendChild(el("b", "model", model.name));
    if (model.rank !== null && model.rank !== undefined) { head.appendChild(el("span", "muted", " #" + model.rank)); }
    head.appendChild(el("span", "score", score(answer.score, tasks[item.task].metric)));
    head.title = model.full;
    card.appendChild(head);
    if (answer.turns) {  // a conversation (rolebench-eval converse): the user's turns and this model's replies
      answer.turns.forEach(function (t, i) {
        card.appendChild(el("div", "turn-user muted", "Turn " + (i + 1) + ", user: " + t.user));
        card.appendChild(el("div", "text" + (t.broke ? " broke" : ""), (t.broke ? "[breaks character] " : "") +
                                                                       t.reply));
      });
    } else if (answer.same_as_rolegpt) {
      card.appendChild(el("div", "text muted", "The same answer as RoleGPT's, above."));
    } else {
      var unfinished = "(unfinished reasoning: the model was still reasoning when it stopped; scored as an empty answer)";
      card.appendChild(answer.unfinished ? el("div", "text muted", unfinished)
        : answer.text.trim() === "" ? el("div", "text muted", "(an empty answer)") : el("div", "text", answer.text));
    }
    answer.judges.forEach(function (v) {
      var judge = data.judges[v.judge];
      var box = el("details", "verdict");
      var summary = el("summary");
      summary.appendChild(el("span", "judge", judge.judge));
      summary.appendChild(el("span", null, ": " + v.verdict));
      box.appendChild(summary);
      v.texts.forEach(function (t, i) {
        if (v.texts.length > 1) { box.appendChild(el("div", "muted", "reply " + (i + 1))); }
        box.appendChild(el("div", "reason", t));
      });
      card.appendChild(box);
    });
    return card;
  }

  function renderDetail() {
    var detail = $("detail");
    while (detail.firstChild) { detail.removeChild(detail.firstChild); }
    var item = data.items[state.item];
    if (!item || !matches(item)) {
      detail.appendChild(el("p", "hint", "Choose an item on the left."));
      return;
    }
    detail.appendChild(el("p", "meta", data.roles[item.role] + " · " + tasks[item.task].label + " · doc " +
                                        item.doc_id + (item.depth ? " · depth " + item.depth : "")));
    detail.appendChild(el("h2", "question", item.question));
    if (item.scenario) { detail.appendChild(el("p", "muted", "Scenario " + item.scenario + ", turn by turn:")); }
    if (item.references.length) {
      var refs = el("section", "refs");
      refs.appendChild(el("h3", null, item.references.length === 1 ? "Reference" : "References"));
      var ol = el("ol");
      item.references.forEach(function (r) { ol.appendChild(el("li", null, r)); });
      refs.appendChild(ol);
      detail.appendChild(refs);
    }
    if (item.rolegpt !== null && item.rolegpt !== undefined) {
      var gpt = el("section", "rolegpt");
      gpt.appendChild(el("h3", null, "RoleGPT (the paper's GPT-4 baseline)"));
      gpt.appendChild(el("div", "text", item.rolegpt));
      detail.appendChild(gpt);
    }
    detail.appendChild(el("h3", null, "Answers (" + item.answers.length + ")"));
    var unfinished = tasks[item.task].unfinished || [];
    if (unfinished.length) {
      detail.appendChild(el("p", "muted", "Unfinished reasoning on this task (scored as empty answers): " +
        unfinished.map(function (u) {
          return data.models[u[0]].name + " " + u[1] + " of " + u[2] + " items";
        }).join(", ")));
    }
    var grid = el("div", "answers");
    var answers = item.answers.slice().sort(function (a, b) {
      var ca = data.models[a.model].name === state.model, cb = data.models[b.model].name === state.model;
      return ca === cb ? a.model - b.model : (ca ? -1 : 1);
    });
    answers.forEach(function (a) { grid.appendChild(answerCard(a, item)); });
    detail.appendChild(grid);
  }

  function update() {
    writeHash();
    renderList();
    renderDetail();
  }

  function start() {
    readHash();
    var taskSelect = $("task");
    option(taskSelect, "", "all tasks");
    data.tasks.forEach(function (t) { option(taskSelect, t.name, t.label + " (" + t.name + ")"); });
    taskSelect.value = tasks[state.task] ? state.task : "";
    state.task = taskSelect.value;
    fillRoles();
    $("q").value = state.q;
    if (state.item < 0 || !data.items[state.item] || !matches(data.items[state.item])) {
      state.item = data.items.findIndex(matches);
    }
    taskSelect.addEventListener("change", function () {
      state.task = taskSelect.value; fillRoles(); state.item = data.items.findIndex(matches); update();
    });
    $("role").addEventListener("change", function () {
      state.role = $("role").value; state.item = data.items.findIndex(matches); update();
    });
    $("q").addEventListener("input", function () {
      state.q = $("q").value;
      if (state.item < 0 || !matches(data.items[state.item])) { state.item = data.items.findIndex(matches); }
      update();
    });
    update();
  }

  start();
}());
