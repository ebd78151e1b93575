"""JSON-RPC for the language server, checked before pygls dispatches it: every request gets an answer.

pygls 2.x structures a message inside `json.loads(object_hook=...)`. When that fails (a negative
position, a missing field, a wrong type, a number out of LSP's range) the exception escapes the read loop,
is logged, and the request is never answered, so the editor waits forever. Here the body is decoded and
checked first, in one place for every method, and each failure gets the JSON-RPC error the spec names:

* -32700 ParseError (id null): the body is not UTF-8, not JSON, or nested deeper than `limits.MAX_DEPTH`;
* -32600 InvalidRequest: not an object, no `"jsonrpc": "2.0"`, a method or id of the wrong type, or a
  request after `shutdown`;
* -32601 MethodNotFound; -32602 InvalidParams: params that do not structure into the method's type;
* -32002 ServerNotInitialized: a request before `initialize`.

A `textDocument/...` message for a document the client has not opened is answered with null (requests)
or dropped (notifications) instead of letting pygls read the URI's path from disk, which for
`file:///dev/zero` or a FIFO would stall the whole server.
"""

from __future__ import annotations

import logging
from typing import Any, Final, TypeGuard
from urllib.parse import unquote

import cattrs
from cattrs.v import format_exception
from lsprotocol import types
from pygls.protocol import LanguageServerProtocol

from ..safejson import JSONInputError, loads
from .transport import INVALID_REQUEST, PARSE_ERROR

log = logging.getLogger(__name__)

INTERNAL_ERROR: Final = -32603
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
SERVER_NOT_INITIALIZED: Final = -32002
_MAX_MESSAGE = 500


class TuskProtocol(LanguageServerProtocol):
    def receive_body(self, body: bytes) -> None:
        """One frame's body, straight from the transport."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.reply_error(None, PARSE_ERROR, f"message body is not valid UTF-8 (bad byte at offset {exc.start})")
            return
        try:
            value = loads(text)
        except JSONInputError as exc:
            self.reply_error(None, PARSE_ERROR, f"message body: {exc}")
            return
        self.receive(value)

    def receive(self, value: Any) -> None:
        """One decoded JSON value: checked, structured and dispatched."""
        if not isinstance(value, dict):
            self.reply_error(None, INVALID_REQUEST, "a message must be a JSON object (batches are not supported)")
            return
        if "method" not in value:
            self._receive_response(value)
            return
        method = value["method"]
        is_request = "id" in value
        msg_id = value.get("id")
        if is_request and not _valid_id(msg_id):
            self.reply_error(None, INVALID_REQUEST, "a request id must be an integer or a string")
        elif value.get("jsonrpc") != self.VERSION or not isinstance(method, str):
            problem = '`jsonrpc` must be "2.0"' if isinstance(method, str) else "`method` must be a string"
            self.reply_error(msg_id if _valid_id(msg_id) else None, INVALID_REQUEST, problem)
        elif _valid_id(msg_id):
            self._receive_request(msg_id, method, value)
        else:
            self._receive_notification(method, value)

    def reply_error(self, msg_id: int | str | None, code: int, message: str) -> None:
        message = message if len(message) <= _MAX_MESSAGE else message[:_MAX_MESSAGE] + "..."
        log.warning("answering request %r with error %d: %s", msg_id, code, message)
        self._send_data({"jsonrpc": self.VERSION, "id": msg_id, "error": {"code": code, "message": message}})

    # --- the three kinds of message ----------------------------------------------------------------

    def _receive_request(self, msg_id: int | str, method: str, data: dict[str, Any]) -> None:
        if self._shutdown:
            self.reply_error(msg_id, INVALID_REQUEST, "the server is shutting down")
            return
        if self._workspace is None and method != types.INITIALIZE:
            self.reply_error(msg_id, SERVER_NOT_INITIALIZED, "the server has not been initialized")
            return
        message_type = self.get_message_type(method)
        if message_type is None or not self._has_handler(method):
            self.reply_error(msg_id, METHOD_NOT_FOUND, f"unknown method {_short(method)}")
            return
        try:
            message = self._converter.structure(data, message_type)
        except Exception as exc:  # cattrs raises validation groups, TypeError, ValueError...: all bad params
            self.reply_error(msg_id, INVALID_PARAMS, f"invalid params for {_short(method)}: {_describe(exc)}")
            return
        if self._document_not_open(method, message.params):
            log.info("%s for a document that is not open: answered with null", method)
            self._send_response(msg_id, None)
            return
        try:
            self.handle_message(message)  # handler errors are answered by pygls; this is about dispatch
        except BrokenPipeError:
            raise
        except Exception as exc:
            log.exception("could not dispatch %s", _short(method))
            self.reply_error(msg_id, INTERNAL_ERROR, f"{type(exc).__name__} while dispatching the request")

    def _receive_notification(self, method: str, data: dict[str, Any]) -> None:
        if method != types.EXIT and (self._shutdown or self._workspace is None):
            log.info("dropped %s: the server is not running", _short(method))
            return
        message_type = self.get_message_type(method)
        if message_type is None or not (method == types.CANCEL_REQUEST or self._has_handler(method)):
            log.debug("dropped notification for unknown method %s", _short(method))
            return
        try:
            message = self._converter.structure(data, message_type)
        except Exception as exc:
            log.warning("dropped %s: invalid params: %s", _short(method), _describe(exc))
            return
        if method == types.CANCEL_REQUEST and not _valid_id(getattr(message.params, "id", None)):
            log.warning("dropped $/cancelRequest: the id must be an integer or a string")
            return
        if self._document_not_open(method, message.params):
            log.warning("dropped %s for a document that is not open", method)
            return
        try:
            self.handle_message(message)
        except BrokenPipeError:
            raise
        except Exception:  # nobody to answer; the server must go on
            log.exception("could not dispatch %s", _short(method))

    def _receive_response(self, data: dict[str, Any]) -> None:
        """A client's answer to one of our requests, or an object that is no message at all."""
        if "id" not in data or ("result" not in data and "error" not in data):
            self.reply_error(None, INVALID_REQUEST, "a message needs a `method`, or an `id` with a `result` or `error`")
            return
        try:
            self.handle_message(self.structure_message(data))
        except BrokenPipeError:
            raise
        except Exception as exc:  # a malformed response must not stop the server; nobody to answer
            log.warning("dropped a malformed response: %s", _describe(exc))

    # --- helpers -----------------------------------------------------------------------------------

    def _has_handler(self, method: str) -> bool:
        return method in self.fm.builtin_features or method in self.fm.features

    def _document_not_open(self, method: str, params: Any) -> bool:
        if not method.startswith("textDocument/") or method == types.TEXT_DOCUMENT_DID_OPEN:
            return False
        uri = getattr(getattr(params, "text_document", None), "uri", None)
        return isinstance(uri, str) and unquote(uri) not in self.workspace.text_documents


def _valid_id(value: Any) -> TypeGuard[int | str]:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _short(text: str) -> str:
    return repr(text[:80] + ("..." if len(text) > 80 else ""))


def _describe(exc: BaseException) -> str:
    """What is wrong, e.g. `Position.line should be in range [0:2147483647], but was -1. @ $.params.position`."""
    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc, format_exception=_format_one))
    return _format_one(exc, None)


def _format_one(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, ValueError) and str(exc):  # lsprotocol's range validators say what was expected
        text = str(exc)
        return text if len(text) <= 200 else text[:200] + "..."
    return format_exception(exc, type_)
