// extension.js without VS Code: `vscode` and the language client are stand-ins that record what the
// extension asks of them, so this checks how it starts the server (`<tusk.server.path> lsp`), which
// settings it hands over (the ones the server reads, under `tusk`) and what it does when `tusk` is
// missing. The language server itself is tested in Python (tests/test_lsp*.py).
"use strict";

const assert = require("node:assert/strict");
const Module = require("node:module");
const { test, beforeEach } = require("node:test");

const calls = { clients: [], errors: [], commands: [] };
let settings = {};
let startFails = null;

const vscode = {
    workspace: {
        workspaceFolders: [{ uri: { fsPath: "/work/project" } }],
        getConfiguration: (section) => {
            assert.equal(section, "tusk");
            return { get: (key) => settings[key] };
        },
        onDidChangeConfiguration: () => ({ dispose() {} }),
    },
    window: {
        createOutputChannel: (name) => ({ name, dispose() {} }),
        showErrorMessage: (message) => {
            calls.errors.push(message);
            return Promise.resolve(undefined);
        },
    },
    commands: {
        registerCommand: (name) => {
            calls.commands.push(name);
            return { dispose() {} };
        },
        executeCommand: () => Promise.resolve(),
    },
};

class LanguageClient {
    constructor(id, name, serverOptions, clientOptions) {
        Object.assign(this, { id, name, serverOptions, clientOptions, state: 1 });
        calls.clients.push(this);
    }
    async start() {
        if (startFails) throw new Error(startFails);
        this.state = 2;
    }
    async stop() {
        this.state = 1;
    }
}

const load = Module._load;
Module._load = function (request, parent, isMain) {
    if (request === "vscode") return vscode;
    if (request === "vscode-languageclient/node") return { LanguageClient, State: { Stopped: 1, Running: 2 } };
    return load.call(this, request, parent, isMain);
};
const extension = require("../extension.js");

beforeEach(async () => {
    await extension.deactivate();
    calls.clients.length = 0;
    calls.errors.length = 0;
    calls.commands.length = 0;
    settings = {};
    startFails = null;
});

test("starts `tusk lsp` for tusk documents with the server's settings", async () => {
    settings = { "server.path": "tusk", envFile: ".env", error: ["TSK401"], ignore: [], resolveOnSave: false, database: null };
    await extension.activate({ subscriptions: [] });
    assert.equal(calls.clients.length, 1);
    const client = calls.clients[0];
    assert.equal(client.id, "tusk"); // so `tusk.trace.server` applies
    assert.deepEqual(client.serverOptions, { command: "tusk", args: ["lsp"], options: { cwd: "/work/project" } });
    assert.deepEqual(client.clientOptions.documentSelector.map((s) => s.language), ["tusk", "tusk"]);
    // unset (null) settings are left out, so the server keeps its defaults
    assert.deepEqual(client.clientOptions.initializationOptions, {
        tusk: { envFile: ".env", error: ["TSK401"], ignore: [], resolveOnSave: false },
    });
    assert.equal(client.clientOptions.synchronize.configurationSection, "tusk");
    assert.deepEqual(calls.commands, ["tusk.restartServer"]);
    assert.deepEqual(calls.errors, []);
});

test("tusk.server.path picks the command, ${workspaceFolder} expanded", async () => {
    settings = { "server.path": "${workspaceFolder}/.venv/bin/tusk" };
    await extension.activate({ subscriptions: [] });
    assert.equal(calls.clients[0].serverOptions.command, "/work/project/.venv/bin/tusk");
});

test("a server that does not start is reported with what to do", async () => {
    startFails = "spawn tusk ENOENT";
    await extension.activate({ subscriptions: [] });
    assert.equal(calls.errors.length, 1);
    assert.match(calls.errors[0], /could not start `tusk lsp` \(spawn tusk ENOENT\)/);
    assert.match(calls.errors[0], /pip install 'tusklang\[lsp\]'/);
    assert.match(calls.errors[0], /tusk\.server\.path/);
});
