// The browser's WebSocket for Tandem.Unity.WebGLTransport in Unity WebGL
// builds (Unity 2021.2 and later). C# names every socket with an id of its
// own and registers its callbacks once (TandemWebSocketInit); the browser's
// events reach C# through them: open, each message (text or binary, as
// bytes), error and close (code and reason).
//
// Emscripten turns each function below into a function of the module (so
// they may use only globals: the $tandemWS state, HEAPU8, _malloc, ...), and
// each makeDynCall macro into a call of a C# function pointer, as Unity's
// manual says to (its preprocessor expands the macro's braces even in a
// comment, so none is written here). Pointers are 'i': Unity's WebGL
// builds are wasm32.
var TandemWebSocketLibrary = {
  $tandemWS: {
    sockets: {}, // C#'s id → its WebSocket
    onOpen: 0, // void (int id)
    onMessage: 0, // void (int id, byte* data, int length, int text)
    onError: 0, // void (int id)
    onClose: 0, // void (int id, int code, byte* reason, int reasonLength)
  },

  // Registers the C# callbacks (static, [MonoPInvokeCallback]).
  TandemWebSocketInit: function (onOpen, onMessage, onError, onClose) {
    tandemWS.onOpen = onOpen;
    tandemWS.onMessage = onMessage;
    tandemWS.onError = onError;
    tandemWS.onClose = onClose;
  },

  // Opens socket id offering exactly one subprotocol. The browser fails the
  // handshake when the server picks none or another one (an error, then a
  // close with 1006). Returns 0, or -1 when the URL is refused at once.
  TandemWebSocketOpen: function (id, urlPtr, subprotocolPtr) {
    var ws;
    try {
      ws = new WebSocket(UTF8ToString(urlPtr), [UTF8ToString(subprotocolPtr)]);
    } catch (e) {
      return -1;
    }
    ws.binaryType = "arraybuffer";
    tandemWS.sockets[id] = ws;
    ws.onopen = function () {
      {{{ makeDynCall('vi', 'tandemWS.onOpen') }}}(id);
    };
    ws.onmessage = function (ev) {
      var text = typeof ev.data === "string";
      var length, ptr;
      if (text) {
        length = lengthBytesUTF8(ev.data);
        ptr = _malloc(length + 1);
        stringToUTF8(ev.data, ptr, length + 1);
      } else {
        var bytes = new Uint8Array(ev.data);
        length = bytes.length;
        ptr = _malloc(length || 1);
        HEAPU8.set(bytes, ptr);
      }
      try {
        {{{ makeDynCall('viiii', 'tandemWS.onMessage') }}}(id, ptr, length, text ? 1 : 0);
      } finally {
        _free(ptr);
      }
    };
    ws.onerror = function () {
      {{{ makeDynCall('vi', 'tandemWS.onError') }}}(id);
    };
    ws.onclose = function (ev) {
      delete tandemWS.sockets[id];
      var reason = ev.reason || "";
      var length = lengthBytesUTF8(reason);
      var ptr = _malloc(length + 1);
      stringToUTF8(reason, ptr, length + 1);
      try {
        // 1006: the connection ended without a close frame (a reset, a failed handshake).
        {{{ makeDynCall('viiii', 'tandemWS.onClose') }}}(id, ev.code, ptr, length);
      } finally {
        _free(ptr);
      }
    };
    return 0;
  },

  // Sends one message: text (UTF-8 bytes) or binary. The browser buffers it.
  // Returns 0, or -1 when the socket is not open.
  TandemWebSocketSend: function (id, dataPtr, length, text) {
    var ws = tandemWS.sockets[id];
    if (!ws || ws.readyState !== 1) return -1;
    if (text) ws.send(UTF8ToString(dataPtr, length));
    else ws.send(HEAPU8.slice(dataPtr, dataPtr + length));
    return 0;
  },

  // Starts the closing handshake; onClose follows with the peer's answer.
  // Nothing once it has begun: the browser answers a close of the server's
  // itself. A browser sends only 1000 and 3000–4999: another code is sent
  // as 4000 (abnormal), never as 1000, which the server takes for a logout.
  TandemWebSocketClose: function (id, code, reasonPtr) {
    var ws = tandemWS.sockets[id];
    if (!ws || ws.readyState > 1) return;
    if (code !== 1000 && (code < 3000 || code > 4999)) code = 4000;
    ws.close(code, UTF8ToString(reasonPtr));
  },

  // Forgets socket id: no callback after this. A browser cannot drop a
  // connection without a close frame, so a socket still open is closed with
  // 4000 (abnormal): not 1000, so the server holds the session for a
  // resume, as after a reset (docs/protocol.md §9.2).
  TandemWebSocketFree: function (id) {
    var ws = tandemWS.sockets[id];
    if (!ws) return;
    delete tandemWS.sockets[id];
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    if (ws.readyState < 2) ws.close(4000, "");
  },
};

autoAddDeps(TandemWebSocketLibrary, "$tandemWS");
mergeInto(LibraryManager.library, TandemWebSocketLibrary);
