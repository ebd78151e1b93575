// The TuskLang extension: starts `tusk lsp` (the language server of the tusklang Python package) for
// .tsk files. Highlighting, brackets and comments come from the grammar and the language configuration
// in package.json; everything else (diagnostics, hover, completion, navigation, rename, formatting) is
// the server's (docs/editors.md). Plain JavaScript, so there is no build step.
"use strict";

const vscode = require("vscode");
const { LanguageClient, State } = require("vscode-languageclient/node");

// The settings the server reads under `tusk` (tusklang/lsp/config.py); `tusk.server.*` is ours.
const SERVER_SETTINGS = ["envFile", "error", "ignore", "projects", "resolveOnSave", "database", "debounceMs"];

let client = null;
let output = null;

/** The server's settings as it reads them: `{ tusk: { envFile, error, ... } }`, unset ones left out. */
function serverSettings(configuration) {
    const tusk = {};
    for (const key of SERVER_SETTINGS) {
        const value = configuration.get(key);
        if (value !== undefined && value !== null) {
            tusk[key] = value;
        }
    }
    return { tusk };
}

/** How to start the server: `<tusk.server.path> lsp` over stdio, in the first workspace folder. */
function serverOptions(configuration, workspaceFolder) {
    let command = configuration.get("server.path") || "tusk";
    if (workspaceFolder && command.includes("${workspaceFolder}")) {
        command = command.split("${workspaceFolder}").join(workspaceFolder);
    }
    const options = workspaceFolder ? { cwd: workspaceFolder } : {};
    return { command, args: ["lsp"], options };
}

function clientOptions(configuration) {
    return {
        documentSelector: [
            { scheme: "file", language: "tusk" },
            { scheme: "untitled", language: "tusk" },
        ],
        initializationOptions: serverSettings(configuration),
        // Changes are pushed as workspace/didChangeConfiguration under `tusk`; the server also pulls them.
        synchronize: { configurationSection: "tusk" },
        outputChannel: output,
    };
}

async function start() {
    const configuration = vscode.workspace.getConfiguration("tusk");
    const folders = vscode.workspace.workspaceFolders;
    const folder = folders && folders.length > 0 ? folders[0].uri.fsPath : undefined;
    const server = serverOptions(configuration, folder);
    client = new LanguageClient("tusk", "TuskLang", server, clientOptions(configuration));
    try {
        await client.start();
    } catch (error) {
        const message =
            `TuskLang: could not start \`${server.command} lsp\` (${error && error.message ? error.message : error}). ` +
            "Install the server with `pip install 'tusklang[lsp]'`, or set `tusk.server.path` to the `tusk` command.";
        vscode.window.showErrorMessage(message, "Open Settings").then((choice) => {
            if (choice === "Open Settings") {
                vscode.commands.executeCommand("workbench.action.openSettings", "tusk.server.path");
            }
        });
    }
}

async function stop() {
    const running = client;
    client = null;
    if (running && running.state !== State.Stopped) {
        await running.stop();
    }
}

async function restart() {
    await stop();
    await start();
}

async function activate(context) {
    output = vscode.window.createOutputChannel("TuskLang");
    context.subscriptions.push(output);
    context.subscriptions.push(vscode.commands.registerCommand("tusk.restartServer", restart));
    context.subscriptions.push(
        vscode.workspace.onDidChangeConfiguration((event) => {
            // Another command is another server; the other settings reach the running one.
            if (event.affectsConfiguration("tusk.server.path")) {
                restart();
            }
        }),
    );
    await start();
}

function deactivate() {
    return stop();
}

module.exports = { activate, deactivate, serverSettings, serverOptions, clientOptions };
