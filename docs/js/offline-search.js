// Search for the site opened from disk (file://), where MkDocs' own search cannot load
// its index (its web worker and XMLHttpRequest are refused there). Over http(s) this does
// nothing and MkDocs' search/main.js works as usual. The index comes as a script written
// by docs/hooks/offline_search.py; results are shown with main.js's displayResults.
(function () {
  "use strict";
  if (window.location.protocol !== "file:") {
    return;
  }

  function loadScript(path, onload) {
    var script = document.createElement("script");
    script.src = joinUrl(base_url, path);
    script.onload = onload;
    document.body.appendChild(script);
  }

  function buildIndex(data) {
    var documents = {};
    var index = lunr(function () {
      this.field("title");
      this.field("text");
      this.ref("location");
      for (var i = 0; i < data.docs.length; i++) {
        this.add(data.docs[i]);
        documents[data.docs[i].location] = data.docs[i];
      }
    });
    return function (query) {
      return index.search(query).map(function (hit) {
        var doc = documents[hit.ref];
        doc.summary = doc.text.substring(0, 200);
        return doc;
      });
    };
  }

  function start() {
    var input = document.getElementById("mkdocs-search-query");
    if (!input) {
      return; // only the search page has the query box
    }
    loadScript("search/lunr.js", function () {
      loadScript("search/search_index.js", function () {
        var data = window.recraftSearchIndex;
        if (data.config && data.config.separator) {
          lunr.tokenizer.separator = new RegExp(data.config.separator);
        }
        var search = buildIndex(data);
        var minLength = (data.config && data.config.min_search_length) || 3;
        function run() {
          var query = input.value;
          displayResults(query.length >= minLength ? search(query) : []);
        }
        input.addEventListener("keyup", run);
        var term = getSearchTermFromLocation();
        if (term) {
          input.value = term;
          run();
        }
      });
    });
  }

  document.addEventListener("DOMContentLoaded", start);
})();
