// The front page has nothing to load: it only says it is ready.
document.body.dataset.ready = "1";
