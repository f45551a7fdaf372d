// hookbus customer portal. Plain JavaScript, no build step, no dependencies.
//
// Rules this file keeps, because the page shows what other people typed
// (endpoint names, headers, payloads, receivers' answers):
// - Untrusted text reaches the page only through textContent and form
//   values, never innerHTML or attributes that run code; the page's
//   structure lives in index.html (<template>s), not in strings here.
// - No inline script or style: the Content-Security-Policy forbids both.
// - The session token comes in the URL fragment (never sent to a server),
//   is removed from the address bar at once and travels only in the
//   Authorization header.
//
// Sections, top to bottom: settings, session, api, dom helpers, status
// messages, dialogs, branding, catalog, endpoints view, endpoint form,
// secret, test connection, recover, delivery log, attempt detail, start.
(function () {
  'use strict';

  // ------------------------------------------------------------ settings

  /** How often a visible view refreshes itself, in milliseconds. */
  var REFRESH_MS = 3000;
  /** Items asked for per page of a listing. */
  var PAGE_SIZE = 50;
  /** How long a status message stays on screen, in milliseconds. */
  var TOAST_MS = 6000;
  /** The width below which the page lays out for a phone (as in portal.css). */
  var PHONE_QUERY = '(max-width: 40rem)';
  /** How long copying to the clipboard may take before the text is selected instead, in milliseconds. */
  var COPY_WAIT_MS = 1500;
  /** The directory the page was served from: the API lives under it. */
  var BASE = new URL('.', document.currentScript ? document.currentScript.src : location.href);
  /** Where the token is kept for this tab, so a reload keeps the session. */
  var TOKEN_KEY = 'hookbus-portal-token:' + BASE.pathname;

  // ------------------------------------------------------------- session

  var session = {
    token: null,

    /** Reads `#token=...` (then forgets the fragment) or this tab's stored token. */
    load: function () {
      var hash = location.hash.replace(/^#/, '');
      var fromUrl = hash ? new URLSearchParams(hash).get('token') : null;
      if (fromUrl) {
        history.replaceState(history.state, '', location.pathname + location.search);
        try { sessionStorage.setItem(TOKEN_KEY, fromUrl); } catch (e) { /* storage off: memory only */ }
        session.token = fromUrl;
        return;
      }
      try { session.token = sessionStorage.getItem(TOKEN_KEY); } catch (e) { session.token = null; }
    },

    forget: function () {
      session.token = null;
      try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* nothing stored */ }
    }
  };

  // ----------------------------------------------------------------- api

  /** An answer other than 2xx: the API's stable code, its message and the field it names. */
  function ApiError(status, body) {
    var err = (body && body.error) || body || {};
    this.status = status;
    this.code = err.code || 'http_' + status;
    this.message = err.message || 'The server answered ' + status + '.';
    this.field = err.field || null;
  }

  function request(method, path, body) {
    var headers = { 'Accept': 'application/json', 'Authorization': 'Bearer ' + session.token };
    var init = { method: method, headers: headers, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch(new URL(path, BASE), init).then(function (res) {
      return res.text().then(function (text) {
        var data = null;
        if (text) {
          try { data = JSON.parse(text); } catch (e) { data = null; }
        }
        if (!res.ok) {
          var error = new ApiError(res.status, data);
          if (res.status === 401) { onSessionLost(error); }
          throw error;
        }
        return data;
      });
    }, function () {
      throw new ApiError(0, { code: 'network', message: 'The portal could not reach the server. Check your connection and try again.' });
    });
  }

  function query(params) {
    var q = new URLSearchParams();
    Object.keys(params).forEach(function (k) {
      if (params[k] !== null && params[k] !== undefined && params[k] !== '') { q.set(k, String(params[k])); }
    });
    var s = q.toString();
    return s ? '?' + s : '';
  }

  function seg(id) { return encodeURIComponent(id); }

  /** Every route of the portal's API (see the crate's OpenAPI document, `openapi.json`). */
  var api = {
    branding: function () { return request('GET', 'api/v1/branding'); },
    session: function () { return request('GET', 'api/v1/session'); },
    tenant: function (key) { return request('GET', 'api/v1/tenants/' + seg(key)); },
    eventTypes: function (cursor) { return request('GET', 'api/v1/event-types' + query({ limit: 100, cursor: cursor })); },
    endpoints: function (cursor) { return request('GET', 'api/v1/endpoints' + query({ limit: PAGE_SIZE, cursor: cursor })); },
    createEndpoint: function (body) { return request('POST', 'api/v1/endpoints', body); },
    updateEndpoint: function (id, body) { return request('PATCH', 'api/v1/endpoints/' + seg(id), body); },
    deleteEndpoint: function (id) { return request('DELETE', 'api/v1/endpoints/' + seg(id)); },
    /** pause, resume, enable or disable; answers the endpoint. */
    endpointAction: function (id, action) { return request('POST', 'api/v1/endpoints/' + seg(id) + '/' + action, {}); },
    rotateSecret: function (id) { return request('POST', 'api/v1/endpoints/' + seg(id) + '/rotate-secret', {}); },
    testSend: function (id, body) { return request('POST', 'api/v1/endpoints/' + seg(id) + '/test', body); },
    recover: function (id, sinceMs) { return request('POST', 'api/v1/endpoints/' + seg(id) + '/recover', { since_ms: sinceMs }); },
    attempts: function (filters, cursor) {
      return request('GET', 'api/v1/attempts' + query(Object.assign({ limit: PAGE_SIZE, cursor: cursor }, filters)));
    },
    attempt: function (id) { return request('GET', 'api/v1/attempts/' + seg(id)); },
    resend: function (endpointId, eventId) {
      return request('POST', 'api/v1/deliveries/' + seg(endpointId) + '/' + seg(eventId) + '/resend', {});
    }
  };

  // --------------------------------------------------------- dom helpers

  function $(id) { return document.getElementById(id); }

  function slot(root, name) { return root.querySelector('[data-slot="' + name + '"]'); }

  function fromTemplate(id) { return $(id).content.firstElementChild.cloneNode(true); }

  /** Sets text, never markup. */
  function setText(el, value) {
    el.textContent = value === null || value === undefined ? '' : String(value);
    return el;
  }

  function make(tag, className, text) {
    var el = document.createElement(tag);
    if (className) { el.className = className; }
    if (text !== undefined) { setText(el, text); }
    return el;
  }

  function clear(el) { while (el.firstChild) { el.removeChild(el.firstChild); } }

  var uid = 0;
  function nextId(prefix) { uid += 1; return prefix + '-' + uid; }

  var dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
  var todayFormat = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' });

  /** A <time> for a Unix-millisecond instant (only the time when it is today), or a dash. */
  function timeEl(ms) {
    if (ms === null || ms === undefined) { return make('span', 'hint', '—'); }
    var d = new Date(ms);
    var today = d.toDateString() === new Date().toDateString();
    var el = make('time', null, (today ? todayFormat : dateFormat).format(d));
    el.dateTime = d.toISOString();
    return el;
  }

  function formatDuration(us) {
    if (us === null || us === undefined) { return '—'; }
    if (us < 1000) { return us + ' µs'; }
    if (us < 10000000) { return (us / 1000).toFixed(us < 10000 ? 1 : 0) + ' ms'; }
    return (us / 1000000).toFixed(1) + ' s';
  }

  /** datetime-local value (local time) to Unix milliseconds, or null. */
  function localInputToMs(value) {
    if (!value) { return null; }
    var ms = new Date(value).getTime();
    return isNaN(ms) ? null : ms;
  }

  function msToLocalInput(ms) {
    var d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
    return d.toISOString().slice(0, 19);
  }

  function prettyJsonText(text) {
    if (text === null || text === undefined || text === '') { return ''; }
    try { return JSON.stringify(JSON.parse(text), null, 2); } catch (e) { return String(text); }
  }

  /** `[{name, value}]` as "name: value" lines. */
  function headerLines(headers) {
    return (headers || []).map(function (h) { return h.name + ': ' + h.value; }).join('\n');
  }

  /** An attempt's body (`{text, base64, truncated}`) as text to show. */
  function bodyText(body) {
    if (!body) { return ''; }
    if (body.text !== null && body.text !== undefined) { return prettyJsonText(body.text); }
    if (body.base64) { return '(not UTF-8; base64) ' + body.base64; }
    return '';
  }

  function busy(button, on) {
    button.disabled = on;
    button.setAttribute('aria-busy', on ? 'true' : 'false');
  }

  // ----------------------------------------------------- status messages

  var toastTimer = null;

  /** Announces a result to screen readers and shows it briefly. */
  function announce(message, isError) {
    var box = $('status');
    clear(box);
    box.appendChild(make('p', isError ? 'error' : null, message));
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { clear(box); }, TOAST_MS);
  }

  function failed(error) {
    if (error instanceof ApiError) {
      if (error.status !== 401) { announce(error.message, true); }
      return;
    }
    announce('Something went wrong: ' + String(error && error.message ? error.message : error), true);
  }

  /** Shows an API error inside a form: next to its field when it names one. */
  function formError(form, errorBox, fields, error) {
    clearFormErrors(form, errorBox);
    if (!(error instanceof ApiError)) { failed(error); return; }
    var target = error.field ? fieldFor(fields, error.field) : null;
    if (target) {
      target.input.setAttribute('aria-invalid', 'true');
      setText(target.message, error.message).hidden = false;
      target.input.focus();
    } else {
      setText(errorBox, error.message).hidden = false;
      errorBox.focus();
    }
  }

  /** The entry of `fields` whose key starts the API's field path (`headers[0].name` -> headers). */
  function fieldFor(fields, path) {
    var root = String(path).split(/[.[]/)[0];
    return fields[path] || fields[root] || null;
  }

  function clearFormErrors(form, errorBox) {
    errorBox.hidden = true;
    setText(errorBox, '');
    form.querySelectorAll('[aria-invalid="true"]').forEach(function (el) { el.removeAttribute('aria-invalid'); });
    form.querySelectorAll('.field-error').forEach(function (el) { el.hidden = true; setText(el, ''); });
  }

  // ------------------------------------------------------------- dialogs

  var dialogs = {
    /** Opens `dialog` as modal, focuses `focus`, and on close returns focus to the opener. */
    open: function (dialog, focus) {
      dialog.opener = document.activeElement;
      if (!dialog.open) { dialog.showModal(); }
      if (focus) { focus.focus(); }
    },

    wire: function () {
      document.querySelectorAll('dialog').forEach(function (dialog) {
        dialog.addEventListener('click', function (event) {
          var closer = event.target.closest('[data-close]');
          if (closer && dialog.contains(closer)) { dialog.close(); }
        });
        dialog.addEventListener('close', function () {
          var back = dialog.opener;
          dialog.opener = null;
          if (back && back.isConnected && typeof back.focus === 'function') { back.focus(); }
        });
      });
    },

    /** Asks a yes/no question; resolves true on confirm. */
    confirm: function (title, text, okLabel, destructive) {
      var dialog = $('dlg-confirm');
      setText($('dlg-confirm-title'), title);
      setText($('dlg-confirm-text'), text);
      var ok = $('confirm-ok');
      setText(ok, okLabel);
      ok.className = destructive ? 'danger' : 'primary';
      dialog.returnValue = '';
      return new Promise(function (resolve) {
        dialog.addEventListener('close', function done() {
          dialog.removeEventListener('close', done);
          resolve(dialog.returnValue === 'ok');
        });
        dialogs.open(dialog, destructive ? $('confirm-cancel') : ok);
      });
    }
  };

  // ------------------------------------------------------------ branding

  function applyBranding(brand) {
    if (!brand) { return; }
    if (brand.title) {
      document.title = brand.title;
      setText($('brand-title'), brand.title);
    }
    var logo = brand.logo_url ? safeImageUrl(brand.logo_url) : null;
    if (logo) {
      var img = $('brand-logo');
      img.src = logo;
      img.alt = (brand.title || 'Webhooks') + ' logo';
      img.hidden = false;
      img.addEventListener('error', function () { img.hidden = true; }, { once: true });
    }
    var accent = brand.accent_color;
    if (accent && CSS.supports('color', accent)) {
      var root = document.documentElement;
      root.style.setProperty('--accent', accent);
      root.style.setProperty('--accent-ink', inkOn(accent));
    }
  }

  /** http(s) or same-origin relative URLs only. */
  function safeImageUrl(value) {
    try {
      var url = new URL(value, BASE);
      return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  /** Black or white, whichever reads better on `color` (WCAG relative luminance). */
  function inkOn(color) {
    var probe = make('span');
    probe.style.color = color;
    document.body.appendChild(probe);
    var rgb = getComputedStyle(probe).color.match(/\d+(\.\d+)?/g) || ['0', '0', '0'];
    probe.remove();
    var lum = rgb.slice(0, 3).map(function (c) {
      var v = Number(c) / 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    var l = 0.2126 * lum[0] + 0.7152 * lum[1] + 0.0722 * lum[2];
    return (l + 0.05) / 0.05 > 1.05 / (l + 0.05) ? '#111111' : '#ffffff';
  }

  // ------------------------------------------------------------- catalog

  var catalog = {
    types: [],

    /** Reads every page of the host's event types. */
    load: function () {
      var types = [];
      function page(cursor) {
        return api.eventTypes(cursor).then(function (answer) {
          types = types.concat(answer.items || []);
          return answer.next_cursor ? page(answer.next_cursor) : types;
        });
      }
      return page(null).then(function (all) {
        catalog.types = all;
        var select = $('f-type');
        all.forEach(function (t) { select.appendChild(option(t.name, t.name)); });
      });
    },

    find: function (name) {
      for (var i = 0; i < catalog.types.length; i += 1) {
        if (catalog.types[i].name === name) { return catalog.types[i]; }
      }
      return null;
    }
  };

  function option(value, label) {
    var o = make('option', null, label);
    o.value = value;
    return o;
  }

  // ------------------------------------------------------ endpoints view

  var endpoints = {
    /** id -> the endpoint as last read. */
    byId: new Map(),
    /** id -> its card. */
    cards: new Map(),
    next: null,

    load: function () {
      return api.endpoints(null).then(function (page) {
        endpoints.next = page.next_cursor || null;
        endpoints.render(page.items || [], true);
        $('endpoints-more').hidden = !endpoints.next;
      });
    },

    more: function () {
      return api.endpoints(endpoints.next).then(function (page) {
        endpoints.next = page.next_cursor || null;
        endpoints.render(page.items || [], false);
        $('endpoints-more').hidden = !endpoints.next;
      });
    },

    /** Updates cards in place (focus stays where it is), adds new ones, drops removed ones. */
    render: function (items, firstPage) {
      var list = $('endpoint-list');
      var seen = new Set();
      items.forEach(function (ep) {
        seen.add(ep.id);
        endpoints.byId.set(ep.id, ep);
        var card = endpoints.cards.get(ep.id);
        if (!card) {
          card = fromTemplate('tpl-endpoint');
          card.dataset.id = ep.id;
          endpoints.cards.set(ep.id, card);
          list.appendChild(card);
        }
        fillCard(card, ep);
      });
      // With every endpoint on one page, a card not in it was deleted elsewhere.
      if (firstPage && endpoints.next === null) {
        Array.from(endpoints.cards.keys()).forEach(function (id) {
          if (!seen.has(id)) { endpoints.drop(id); }
        });
      }
      endpoints.changed();
    },

    remove: function (id) {
      endpoints.drop(id);
      endpoints.changed();
    },

    drop: function (id) {
      var card = endpoints.cards.get(id);
      if (card) { card.remove(); }
      endpoints.cards.delete(id);
      endpoints.byId.delete(id);
    },

    changed: function () {
      $('endpoint-empty').hidden = endpoints.cards.size > 0;
      logView.fillEndpointFilter();
    },

    name: function (id) {
      var ep = endpoints.byId.get(id);
      return ep ? ep.name : id;
    }
  };

  function statusOf(ep) {
    if (ep.status === 'paused') { return { label: 'Paused: ' + pauseReason(ep), kind: 'warn', paused: true }; }
    if (ep.status === 'disabled') { return { label: 'Disabled', kind: 'idle', paused: false }; }
    var h = ep.health || {};
    if (h.consecutive_failed_attempts > 0) { return { label: 'Failing', kind: 'bad', paused: false }; }
    return { label: 'Active', kind: 'ok', paused: false };
  }

  function pauseReason(ep) {
    switch (ep.paused_reason) {
      case 'manual': return 'by hand';
      case 'gone': return 'the receiver answered 410 Gone';
      case 'consecutive_failures': return 'too many failed deliveries in a row';
      default: return ep.paused_reason ? String(ep.paused_reason) : 'stopped';
    }
  }

  function fillCard(card, ep) {
    var status = statusOf(ep);
    var h = ep.health || {};
    setText(slot(card, 'name'), ep.name);
    var badge = slot(card, 'status');
    setText(badge, status.label);
    badge.className = 'badge ' + status.kind;
    card.dataset.state = status.kind;
    var desc = slot(card, 'description');
    setText(desc, ep.description || '');
    desc.hidden = !ep.description;
    setText(slot(card, 'url'), ep.url);
    var chips = slot(card, 'events');
    clear(chips);
    var events = allEvents(ep.events) ? ['all event types'] : ep.events;
    events.forEach(function (e) { chips.appendChild(make('li', null, e)); });
    setText(slot(card, 'queued'), (h.queued || 0) + (h.in_flight ? ' (+' + h.in_flight + ' sending)' : ''));
    replaceWith(slot(card, 'last-success'), timeEl(h.last_success_ms));
    replaceWith(slot(card, 'last-failure'), timeEl(h.last_failure_ms));
    setText(slot(card, 'failing'), h.consecutive_failed_attempts || 0);
    var pause = card.querySelector('[data-action="pause"]');
    setText(pause, status.paused ? 'Resume' : 'Pause');
    pause.hidden = ep.status === 'disabled';
    card.setAttribute('aria-label', ep.name);
  }

  /** An endpoint subscribed to everything: `["*"]` (or, defensively, nothing listed). */
  function allEvents(events) {
    return !events || !events.length || (events.length === 1 && events[0] === '*');
  }

  function replaceWith(holder, child) {
    clear(holder);
    holder.appendChild(child);
  }

  function onEndpointAction(event) {
    var button = event.target.closest('button[data-action]');
    if (!button) { return; }
    var card = button.closest('.card');
    var ep = endpoints.byId.get(card.dataset.id);
    if (!ep) { return; }
    switch (button.dataset.action) {
      case 'edit': endpointForm.open(ep); break;
      case 'test': testDialog.open(ep); break;
      case 'log': logView.showFor(ep.id); break;
      case 'pause': pauseOrResume(ep, button); break;
      case 'rotate': rotate(ep); break;
      case 'recover': recoverDialog.open(ep); break;
      case 'delete': remove(ep); break;
      default: break;
    }
  }

  function pauseOrResume(ep, button) {
    var paused = statusOf(ep).paused;
    busy(button, true);
    api.endpointAction(ep.id, paused ? 'resume' : 'pause').then(function (updated) {
      endpoints.render([updated], false);
      announce(paused ? ep.name + ' resumed: queued webhooks are being sent.' : ep.name + ' paused: new webhooks are kept until you resume it.');
    }).catch(failed).then(function () { busy(button, false); });
  }

  function rotate(ep) {
    dialogs.confirm('Rotate the signing secret?',
      'A new secret signs every webhook to ' + ep.name + ' from now on. The old one stays valid for a grace period, so you have time to update your server.',
      'Rotate secret', false).then(function (ok) {
      if (!ok) { return null; }
      return api.rotateSecret(ep.id).then(function (answer) {
        var expiries = (answer.endpoint && answer.endpoint.previous_secrets_expire_ms) || [];
        secretDialog.open(answer.secret, expiries.length ? Math.max.apply(null, expiries) : null);
        announce('Secret rotated for ' + ep.name + '.');
        return endpoints.load();
      });
    }).catch(failed);
  }

  function remove(ep) {
    dialogs.confirm('Delete ' + ep.name + '?',
      'This endpoint stops receiving webhooks and its queued webhooks are dropped. This cannot be undone.',
      'Delete endpoint', true).then(function (ok) {
      if (!ok) { return; }
      return api.deleteEndpoint(ep.id).then(function () {
        endpoints.remove(ep.id);
        announce(ep.name + ' deleted.');
        $('add-endpoint').focus();
      });
    }).catch(failed);
  }

  // ------------------------------------------------------- endpoint form

  var endpointForm = {
    editing: null,

    fields: function () {
      return {
        name: { input: $('ep-name'), message: $('ep-name-error') },
        description: { input: $('ep-description'), message: $('ep-description-error') },
        url: { input: $('ep-url'), message: $('ep-url-error') },
        events: { input: $('ep-catalog').querySelector('input') || $('ep-catalog'), message: $('ep-events-error') },
        headers: { input: $('ep-headers').querySelector('input') || $('ep-add-header'), message: $('ep-headers-error') },
        filters: { input: $('ep-filters').querySelector('input') || $('ep-add-filter'), message: $('ep-filters-error') },
        filter: { input: $('ep-filters').querySelector('input') || $('ep-add-filter'), message: $('ep-filters-error') }
      };
    },

    open: function (ep) {
      var form = $('endpoint-form');
      form.reset();
      clearFormErrors(form, $('endpoint-form-error'));
      endpointForm.editing = ep ? ep.id : null;
      setText($('dlg-endpoint-title'), ep ? 'Edit ' + ep.name : 'Add endpoint');
      setText($('endpoint-save'), ep ? 'Save changes' : 'Create endpoint');
      $('ep-name').value = ep ? ep.name : '';
      $('ep-description').value = ep ? ep.description || '' : '';
      $('ep-url').value = ep ? ep.url : '';
      $('ep-enabled').checked = ep ? ep.status !== 'disabled' : true;
      endpointForm.fillCatalog(ep && !allEvents(ep.events) ? ep.events : []);
      var headers = $('ep-headers');
      clear(headers);
      ((ep && ep.headers) || []).forEach(function (h) { addPair(headers, 'Header name', 'Value', h.name, h.value); });
      var filters = $('ep-filters');
      clear(filters);
      ((ep && ep.filters) || []).forEach(function (f) { addPair(filters, 'Attribute', 'Values', f.key, f.values.join(', ')); });
      dialogs.open($('dlg-endpoint'), $('ep-name'));
    },

    /** One checkbox per catalog type, plus the endpoint's own patterns (such as `order.*`). */
    fillCatalog: function (chosen) {
      var box = $('ep-catalog');
      clear(box);
      var names = catalog.types.map(function (t) { return t.name; });
      var extra = chosen.filter(function (p) { return names.indexOf(p) < 0; });
      catalog.types.forEach(function (t) { box.appendChild(choice(t.name, t.description, chosen.indexOf(t.name) >= 0)); });
      extra.forEach(function (p) { box.appendChild(choice(p, 'A pattern set for this endpoint.', true)); });
      if (!box.firstChild) { box.appendChild(make('p', 'hint', 'Your provider has not listed its event types.')); }
    },

    body: function () {
      var events = [];
      $('ep-catalog').querySelectorAll('input:checked').forEach(function (i) { events.push(i.value); });
      var body = {
        name: $('ep-name').value.trim(),
        url: $('ep-url').value.trim(),
        // None chosen: every event type.
        events: events.length ? events : ['*'],
        headers: readPairs($('ep-headers')).map(function (p) { return { name: p[0], value: p[1] }; }),
        filters: readPairs($('ep-filters')).map(function (p) {
          return { key: p[0], values: p[1].split(',').map(function (v) { return v.trim(); }).filter(Boolean) };
        })
      };
      var description = $('ep-description').value.trim();
      var editing = endpointForm.editing ? endpoints.byId.get(endpointForm.editing) : null;
      // Sent when there is one, or to clear one the endpoint has.
      if (description || (editing && editing.description)) { body.description = description; }
      return body;
    },

    submit: function (event) {
      event.preventDefault();
      var form = $('endpoint-form');
      var errorBox = $('endpoint-form-error');
      var fields = endpointForm.fields();
      clearFormErrors(form, errorBox);
      var body = endpointForm.body();
      var missing = !body.name ? 'name' : !body.url ? 'url' : null;
      if (missing) {
        formError(form, errorBox, fields, new ApiError(400, { code: 'required', field: missing, message: (missing === 'name' ? 'Name' : 'URL') + ' is required.' }));
        return;
      }
      var save = $('endpoint-save');
      busy(save, true);
      var id = endpointForm.editing;
      var enabled = $('ep-enabled').checked;
      var call;
      if (id) {
        // The switch is its own action: enable or disable after the update.
        var wasEnabled = endpoints.byId.get(id).status !== 'disabled';
        call = api.updateEndpoint(id, body).then(function (ep) {
          return enabled === wasEnabled ? ep : api.endpointAction(id, enabled ? 'enable' : 'disable');
        });
      } else {
        body.enabled = enabled;
        call = api.createEndpoint(body);
      }
      call.then(function (answer) {
        var ep = answer.endpoint || answer;
        $('dlg-endpoint').close();
        endpoints.render([ep], false);
        if (!id && answer.secret) {
          secretDialog.open(answer.secret, null);
        }
        announce(id ? ep.name + ' saved.' : ep.name + ' created.');
      }).catch(function (error) {
        formError(form, errorBox, fields, error);
      }).then(function () { busy(save, false); });
    }
  };

  function choice(value, description, checked) {
    var label = make('label');
    var input = make('input');
    input.type = 'checkbox';
    input.value = value;
    input.checked = checked;
    label.appendChild(input);
    label.appendChild(make('span', 'type', value));
    if (description) { label.appendChild(make('span', 'desc', description)); }
    return label;
  }

  function addPair(container, keyLabel, valueLabel, key, value) {
    var row = fromTemplate('tpl-pair');
    var n = container.children.length + 1;
    var keyInput = slot(row, 'key');
    var valueInput = slot(row, 'value');
    keyInput.id = nextId('pair-key');
    valueInput.id = nextId('pair-value');
    var kl = slot(row, 'key-label');
    setText(kl, keyLabel + ' ' + n);
    kl.htmlFor = keyInput.id;
    var vl = slot(row, 'value-label');
    setText(vl, valueLabel + ' ' + n);
    vl.htmlFor = valueInput.id;
    keyInput.value = key || '';
    valueInput.value = value || '';
    var removeButton = slot(row, 'remove');
    removeButton.setAttribute('aria-label', 'Remove ' + keyLabel.toLowerCase() + ' ' + n);
    removeButton.addEventListener('click', function () {
      var next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      var focusTarget = next ? slot(next, 'key') : container.parentElement.querySelector('button:not([data-slot])');
      if (focusTarget) { focusTarget.focus(); }
    });
    container.appendChild(row);
    return keyInput;
  }

  function readPairs(container) {
    var out = [];
    container.querySelectorAll('.row').forEach(function (row) {
      var k = slot(row, 'key').value.trim();
      var v = slot(row, 'value').value;
      if (k) { out.push([k, v]); }
    });
    return out;
  }

  // -------------------------------------------------------------- secret

  var secretDialog = {
    open: function (secret, previousExpiresAt) {
      setText($('secret-value'), secret);
      var grace = $('secret-grace');
      if (previousExpiresAt) {
        setText(grace, 'The previous secret keeps working until ' + dateFormat.format(new Date(previousExpiresAt)) + '.');
        grace.hidden = false;
      } else {
        grace.hidden = true;
      }
      setText($('secret-copy'), 'Copy');
      dialogs.open($('dlg-secret'), $('secret-copy'));
    },

    copy: function () {
      var value = $('secret-value').textContent;
      var done = function () { setText($('secret-copy'), 'Copied'); announce('Secret copied to the clipboard.'); };
      if (navigator.clipboard && window.isSecureContext) {
        // A browser that asks the user for permission may never settle:
        // select the text after a moment so it can be copied by hand.
        var settled = false;
        var fallback = setTimeout(function () { if (!settled) { settled = true; secretDialog.select(); } }, COPY_WAIT_MS);
        navigator.clipboard.writeText(value).then(function () {
          if (!settled) { settled = true; clearTimeout(fallback); done(); }
        }, function () {
          if (!settled) { settled = true; clearTimeout(fallback); secretDialog.select(); }
        });
      } else {
        secretDialog.select();
      }
    },

    /** Without clipboard access (plain http), select the text so the user can copy it. */
    select: function () {
      var range = document.createRange();
      range.selectNodeContents($('secret-value'));
      var sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      $('secret-value').focus();
      announce('Secret selected: press Ctrl+C (or ⌘C) to copy it.');
    }
  };

  // ----------------------------------------------------- test connection

  var testDialog = {
    endpoint: null,

    open: function (ep) {
      testDialog.endpoint = ep;
      var form = $('test-form');
      clearFormErrors(form, $('test-form-error'));
      setText($('test-endpoint-name'), ep.name);
      $('test-result').hidden = true;
      var select = $('test-type');
      clear(select);
      var subscribed = allEvents(ep.events) ? null : ep.events;
      var types = catalog.types.filter(function (t) { return !subscribed || matchesAny(t.name, subscribed); });
      if (!types.length) { types = catalog.types; }
      types.forEach(function (t) { select.appendChild(option(t.name, t.name)); });
      if (!types.length) { select.appendChild(option('test.event', 'test.event')); }
      testDialog.prefill();
      dialogs.open($('dlg-test'), select);
    },

    prefill: function () {
      var t = catalog.find($('test-type').value);
      setText($('test-type-desc'), t ? t.description : '');
      $('test-payload').value = JSON.stringify(t && t.example !== undefined ? t.example : {}, null, 2);
    },

    submit: function (event) {
      event.preventDefault();
      var form = $('test-form');
      var errorBox = $('test-form-error');
      var fields = {
        payload: { input: $('test-payload'), message: $('test-payload-error') },
        event_type: { input: $('test-type'), message: errorBox }
      };
      clearFormErrors(form, errorBox);
      var payload;
      try {
        payload = JSON.parse($('test-payload').value);
      } catch (e) {
        formError(form, errorBox, fields, new ApiError(400, { code: 'invalid_json', field: 'payload', message: 'The payload is not valid JSON: ' + e.message }));
        return;
      }
      var send = $('test-send');
      busy(send, true);
      setText(send, 'Sending…');
      api.testSend(testDialog.endpoint.id, { event_type: $('test-type').value, payload: payload }).then(function (answer) {
        testDialog.show(answer.attempt);
      }).catch(function (error) {
        formError(form, errorBox, fields, error);
      }).then(function () {
        busy(send, false);
        setText(send, 'Send test');
      });
    },

    show: function (attempt) {
      var summary = $('test-result-summary');
      clear(summary);
      kv(summary, 'Outcome', outcomeBadge(attempt));
      kv(summary, 'Status', attempt.status_code === null || attempt.status_code === undefined ? 'no answer' : attempt.status_code);
      kv(summary, 'Duration', formatDuration(attempt.duration_us));
      if (attempt.error_kind) { kv(summary, 'Error', errorText(attempt)); }
      var response = attempt.response || {};
      var headers = headerLines(response.headers);
      $('test-result-headers-box').hidden = !headers;
      setText($('test-result-headers'), headers);
      setText($('test-result-body'), bodyText(response.body) || '(empty)');
      $('test-result').hidden = false;
      $('test-result').scrollIntoView({ block: 'nearest' });
      announce(attempt.succeeded ? 'Test delivered: the receiver answered ' + attempt.status_code + '.' : 'Test failed: ' + outcomeText(attempt) + '.', !attempt.succeeded);
    }
  };

  function matchesAny(type, patterns) {
    return patterns.some(function (p) {
      if (p === '*' || p === type) { return true; }
      return p.slice(-2) === '.*' && type.indexOf(p.slice(0, -1)) === 0;
    });
  }

  function kv(dl, key, value) {
    dl.appendChild(make('dt', null, key));
    var dd = make('dd');
    if (value instanceof Node) { dd.appendChild(value); } else { setText(dd, value); }
    dl.appendChild(dd);
  }

  /** "timeout: …", or the message alone when it already says its kind ("status 500"). */
  function errorText(a) {
    var message = a.error_message || '';
    if (!message) { return a.error_kind; }
    return message.indexOf(a.error_kind) === 0 ? message : a.error_kind + ': ' + message;
  }

  function outcomeText(a) {
    if (a.succeeded) { return 'Delivered (' + a.status_code + ')'; }
    if (a.status_code !== null && a.status_code !== undefined) { return 'Failed (' + a.status_code + ')'; }
    return 'Failed (' + (a.error_kind || 'error') + ')';
  }

  function outcomeBadge(a) {
    return make('span', 'badge ' + (a.succeeded ? 'ok' : 'bad'), outcomeText(a));
  }

  // ------------------------------------------------------------- recover

  var recoverDialog = {
    endpoint: null,

    open: function (ep) {
      recoverDialog.endpoint = ep;
      clearFormErrors($('recover-form'), $('recover-form-error'));
      setText($('recover-endpoint-name'), ep.name);
      $('recover-since').value = msToLocalInput(Date.now() - 24 * 3600 * 1000);
      dialogs.open($('dlg-recover'), $('recover-since'));
    },

    submit: function (event) {
      event.preventDefault();
      var form = $('recover-form');
      var errorBox = $('recover-form-error');
      var fields = { since_ms: { input: $('recover-since'), message: $('recover-since-error') } };
      var since = localInputToMs($('recover-since').value);
      if (since === null) {
        formError(form, errorBox, fields, new ApiError(400, { field: 'since_ms', message: 'Choose a date and time.' }));
        return;
      }
      var ep = recoverDialog.endpoint;
      api.recover(ep.id, since).then(function (answer) {
        $('dlg-recover').close();
        var n = answer && typeof answer.queued === 'number' ? answer.queued : 0;
        announce(n === 1 ? '1 failed delivery to ' + ep.name + ' is being sent again.' : n + ' failed deliveries to ' + ep.name + ' are being sent again.');
        return endpoints.load();
      }).catch(function (error) { formError(form, errorBox, fields, error); });
    }
  };

  // -------------------------------------------------------- delivery log

  var logView = {
    filters: {},
    rows: new Map(),
    next: null,

    fillEndpointFilter: function () {
      var select = $('f-endpoint');
      var current = select.value;
      while (select.options.length > 1) { select.remove(1); }
      endpoints.byId.forEach(function (ep) { select.appendChild(option(ep.id, ep.name)); });
      select.value = current;
      if (select.value !== current) { select.value = ''; }
    },

    readFilters: function () {
      var outcome = $('f-outcome').value;
      return {
        endpoint: $('f-endpoint').value,
        event_type: $('f-type').value,
        outcome: outcome,
        since_ms: localInputToMs($('f-since').value),
        until_ms: localInputToMs($('f-until').value)
      };
    },

    showFor: function (endpointId) {
      ['f-type', 'f-outcome', 'f-since', 'f-until'].forEach(function (id) { $(id).value = ''; });
      $('f-endpoint').value = endpointId;
      views.show('log');
      logView.apply();
    },

    apply: function () {
      logView.filters = logView.readFilters();
      logView.rows.clear();
      clear($('log-rows'));
      logView.next = null;
      return logView.load(true);
    },

    /** First page: new attempts go on top, rows already shown stay (and keep focus). */
    load: function (announceCount) {
      return api.attempts(logView.filters, null).then(function (page) {
        var items = page.items || [];
        var body = $('log-rows');
        var anchor = body.firstChild;
        items.forEach(function (a) {
          if (logView.rows.has(a.id)) { return; }
          var row = attemptRow(a);
          logView.rows.set(a.id, row);
          body.insertBefore(row, anchor);
        });
        if (logView.next === null && logView.rows.size <= items.length) {
          logView.next = page.next_cursor || null;
        }
        logView.updateCount(announceCount);
      });
    },

    more: function () {
      return api.attempts(logView.filters, logView.next).then(function (page) {
        var body = $('log-rows');
        (page.items || []).forEach(function (a) {
          if (logView.rows.has(a.id)) { return; }
          var row = attemptRow(a);
          logView.rows.set(a.id, row);
          body.appendChild(row);
        });
        logView.next = page.next_cursor || null;
        logView.updateCount(true);
      });
    },

    updateCount: function (say) {
      var n = logView.rows.size;
      $('log-empty').hidden = n > 0;
      $('log-table').hidden = n === 0;
      $('log-more').hidden = !logView.next;
      if (say) { setText($('log-count'), n === 1 ? '1 attempt shown.' : n + ' attempts shown.'); }
    }
  };

  function attemptRow(a) {
    var row = fromTemplate('tpl-attempt');
    row.dataset.id = a.id;
    replaceWith(slot(row, 'time'), timeEl(a.started_ms));
    setText(slot(row, 'endpoint'), endpoints.name(a.endpoint));
    setText(slot(row, 'type'), a.event_type);
    setText(slot(row, 'number'), a.number + (a.trigger && a.trigger !== 'scheduled' ? ' (' + a.trigger + ')' : ''));
    replaceWith(slot(row, 'outcome'), outcomeBadge(a));
    setText(slot(row, 'duration'), formatDuration(a.duration_us));
    var open = slot(row, 'open');
    open.setAttribute('aria-label', 'Details of attempt ' + a.number + ' of ' + (a.event_type || 'event') + ' to ' + endpoints.name(a.endpoint));
    open.addEventListener('click', function () { attemptDialog.open(a.id); });
    return row;
  }

  // ------------------------------------------------------ attempt detail

  var attemptDialog = {
    current: null,

    open: function (id) {
      api.attempt(id).then(function (a) {
        attemptDialog.current = a;
        setText($('dlg-attempt-title'), 'Attempt ' + a.number + ' · ' + (a.event_type || ''));
        var summary = $('attempt-summary');
        clear(summary);
        kv(summary, 'Outcome', outcomeBadge(a));
        kv(summary, 'Endpoint', endpoints.name(a.endpoint));
        kv(summary, 'Event', a.event);
        kv(summary, 'Started', timeEl(a.started_ms));
        kv(summary, 'Duration', formatDuration(a.duration_us));
        kv(summary, 'Trigger', a.trigger);
        if (a.error_kind) { kv(summary, 'Error', errorText(a)); }
        var req = a.request || {};
        var res = a.response || {};
        setText($('attempt-req-headers'), headerLines(req.headers) || '(no headers recorded)');
        setText($('attempt-req-body'), bodyText(req.body) || '(empty)');
        setText($('attempt-res-headers'), res.status_code !== null && res.status_code !== undefined
          ? 'HTTP ' + res.status_code + (headerLines(res.headers) ? '\n' + headerLines(res.headers) : '')
          : 'No answer');
        setText($('attempt-res-body'), bodyText(res.body) || '(empty)');
        $('attempt-req-truncated').hidden = !(req.body && req.body.truncated);
        $('attempt-res-truncated').hidden = !(res.body && res.body.truncated);
        dialogs.open($('dlg-attempt'), $('dlg-attempt').querySelector('[data-close]'));
      }).catch(failed);
    },

    resend: function () {
      var a = attemptDialog.current;
      var button = $('attempt-resend');
      busy(button, true);
      api.resend(a.endpoint, a.event).then(function () {
        announce('Resending ' + (a.event_type || 'the event') + ' to ' + endpoints.name(a.endpoint) + '.');
        $('dlg-attempt').close();
        return logView.load(false);
      }).catch(failed).then(function () { busy(button, false); });
    }
  };

  // --------------------------------------------------------------- views

  var views = {
    current: 'endpoints',

    show: function (name) {
      views.current = name;
      $('view-endpoints').hidden = name !== 'endpoints';
      $('view-log').hidden = name !== 'log';
      document.querySelectorAll('.tabs button').forEach(function (b) {
        if (b.dataset.view === name) { b.setAttribute('aria-current', 'page'); } else { b.removeAttribute('aria-current'); }
      });
    }
  };

  /** Refreshes the visible view while the tab is visible and no dialog is open. */
  function tick() {
    if (document.hidden || !session.token || document.querySelector('dialog[open]')) { return; }
    var work = views.current === 'endpoints'
      ? endpoints.load()
      : $('log-auto').checked ? logView.load(false) : null;
    if (work) { work.catch(function () { /* the next tick tries again; actions report their own errors */ }); }
  }

  function onSessionLost(error) {
    session.forget();
    $('view-loading').hidden = true;
    $('view-endpoints').hidden = true;
    $('view-log').hidden = true;
    $('view-nosession').hidden = false;
    document.querySelector('.tabs').hidden = true;
    if (error && error.message) { setText($('nosession-detail'), error.message + ' Ask your provider for a new link.'); }
  }

  /** Says whose settings these are (the tenant's display name when it has one) and until when the link works. */
  function showSession(info) {
    if (!info || !info.tenant) { return null; }
    var show = function (name) {
      var text = 'Account ' + name;
      if (info.expires_ms) { text += ' · link valid until ' + dateFormat.format(new Date(info.expires_ms)); }
      var el = $('session-info');
      setText(el, text);
      el.hidden = false;
    };
    return api.tenant(info.tenant).then(function (t) { show(t.display_name || info.tenant); }, function () { show(info.tenant); });
  }

  // --------------------------------------------------------------- start

  function wire() {
    dialogs.wire();
    document.querySelectorAll('.tabs button').forEach(function (b) {
      b.addEventListener('click', function () {
        views.show(b.dataset.view);
        if (b.dataset.view === 'log') { logView.apply().catch(failed); }
      });
    });
    $('add-endpoint').addEventListener('click', function () { endpointForm.open(null); });
    $('refresh-endpoints').addEventListener('click', function () {
      endpoints.load().then(function () { announce('Endpoints updated.'); }).catch(failed);
    });
    $('endpoints-more').addEventListener('click', function () { endpoints.more().catch(failed); });
    $('endpoint-list').addEventListener('click', onEndpointAction);
    $('endpoint-form').addEventListener('submit', endpointForm.submit);
    $('ep-add-header').addEventListener('click', function () { addPair($('ep-headers'), 'Header name', 'Value').focus(); });
    $('ep-add-filter').addEventListener('click', function () { addPair($('ep-filters'), 'Attribute', 'Values').focus(); });
    $('secret-copy').addEventListener('click', secretDialog.copy);
    $('test-type').addEventListener('change', testDialog.prefill);
    $('test-form').addEventListener('submit', testDialog.submit);
    $('recover-form').addEventListener('submit', recoverDialog.submit);
    $('log-filters').addEventListener('submit', function (event) {
      event.preventDefault();
      logView.apply().catch(failed);
    });
    $('log-filters').addEventListener('reset', function () {
      setTimeout(function () { logView.apply().catch(failed); }, 0);
    });
    $('log-more').addEventListener('click', function () { logView.more().catch(failed); });
    $('attempt-resend').addEventListener('click', attemptDialog.resend);
  }

  function start() {
    session.load();
    wire();
    // On a phone the filters start folded, so the log is on the first screen.
    if (window.matchMedia(PHONE_QUERY).matches) { $('log-filter-box').open = false; }
    if (!session.token) { onSessionLost(null); return; }
    api.branding().then(applyBranding, function () { /* default look */ })
      .then(api.session)
      .then(showSession)
      .then(catalog.load)
      .then(endpoints.load)
      .then(function () {
        $('view-loading').hidden = true;
        views.show('endpoints');
        document.body.dataset.ready = 'true';
        setInterval(tick, REFRESH_MS);
      })
      .catch(failed);
  }

  start();
}());
