// The TextMate grammar (syntaxes/tusk.tmLanguage.json) tokenized as VS Code does: vscode-textmate with
// the Oniguruma regex engine (WebAssembly), line by line, each line's state carried to the next.
//
// 1. Chosen lines of the fixtures get the scopes a theme colours: comment, string, interpolation,
//    directive, variable, section, key, number, range, constant, foreign code.
// 2. Every valid fixture tokenizes to the end without the tokenizer stopping early and ends in the
//    grammar's root state (no string, comment or call left open: the catastrophic fallback of a
//    grammar, where one construct swallows the rest of the file).
// 3. When tests/test_vscode_extension.py passes TUSK_GRAMMAR_PLACES (a JSON file of the places the
//    parser found in every fixture it accepts, tests/highlight_oracle.py), each place starts with a
//    token of its kind.
"use strict";

const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { test, before } = require("node:test");
const vsctm = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

const EXTENSION = path.resolve(__dirname, "..");
const FIXTURES = path.resolve(EXTENSION, "..", "..", "fixtures");
const GRAMMAR = path.join(EXTENSION, "syntaxes", "tusk.tmLanguage.json");

// A place of the parser's kind starts with a token carrying one of these scopes (a prefix match).
const SCOPES = {
    key: ["support.type.property-name.tusk"],
    section: ["entity.name.section.tusk"],
    string: ["string.quoted.", "string.template.tusk"],
    interpolation: ["meta.interpolation.tusk"],
    number: ["constant.numeric."],
    range: ["constant.numeric.range.tusk"],
    constant: ["constant.language."],
    variable: ["variable.other.readwrite.tusk"],
    directive: ["support.function.directive.tusk"],
    foreign: ["entity.name.function.foreign.tusk"],
    comment: ["comment."],
};

let grammar;

before(async () => {
    const wasm = fs.readFileSync(path.join(path.dirname(require.resolve("vscode-oniguruma")), "onig.wasm"));
    await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
    const registry = new vsctm.Registry({
        onigLib: Promise.resolve({
            createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
            createOnigString: (text) => new oniguruma.OnigString(text),
        }),
        loadGrammar: async (scopeName) =>
            scopeName === "source.tusk" ? vsctm.parseRawGrammar(fs.readFileSync(GRAMMAR, "utf8"), GRAMMAR) : null,
    });
    grammar = await registry.loadGrammar("source.tusk");
    assert.ok(grammar, "the grammar loads");
});

/** Tokenize a whole text as the editor does: lines without their line ends, the state carried over. */
function tokenize(text) {
    let state = vsctm.INITIAL;
    const lines = text.split(/\r?\n/);
    const tokens = [];
    for (const line of lines) {
        const result = grammar.tokenizeLine(line, state, 5000);
        assert.equal(result.stoppedEarly, false, `tokenizing stopped early on: ${line}`);
        tokens.push(result.tokens.map((t) => ({ ...t, text: line.slice(t.startIndex, t.endIndex) })));
        state = result.ruleStack;
    }
    return { lines, tokens, depth: state.depth };
}

function scopesAt(tokens, line, character) {
    const token = tokens[line].find((t) => t.startIndex <= character && character < t.endIndex);
    return token ? token.scopes : [];
}

function hasScope(scopes, prefixes) {
    return scopes.some((scope) => prefixes.some((prefix) => scope.startsWith(prefix)));
}

/** The scopes of the token holding `needle` (its first occurrence on the line containing `lineText`). */
function scopesOf(text, lineText, needle, nth = 0) {
    const { lines, tokens } = tokenize(text);
    const line = lines.findIndex((l) => l.includes(lineText));
    assert.ok(line >= 0, `no line containing ${JSON.stringify(lineText)}`);
    let at = -1;
    for (let i = 0; i <= nth; i++) {
        at = lines[line].indexOf(needle, at + 1);
    }
    assert.ok(at >= 0, `${JSON.stringify(needle)} not on line ${JSON.stringify(lines[line])}`);
    return scopesAt(tokens, line, at);
}

function fixture(name) {
    return fs.readFileSync(path.join(FIXTURES, name), "utf8");
}

function expectScope(text, lineText, needle, scope, nth = 0) {
    const scopes = scopesOf(text, lineText, needle, nth);
    assert.ok(hasScope(scopes, [scope]), `${needle} on "${lineText}": expected ${scope}, got ${scopes.join(" ")}`);
}

test("comments: #, // and /* */", () => {
    const text = fixture("syntax/valid/semicolon_members.tsk");
    expectScope(text, "// `;` may end", "//", "comment.line.double-slash.tusk");
    const block = fixture("valid/syntax/comments_block.tsk");
    expectScope(block, "/* block */", "block", "comment.block.tusk");
    expectScope(block, "/* block */", "a", "support.type.property-name.tusk");
    expectScope(block, "b = /* inline */ 2", "2", "constant.numeric.integer.decimal.tusk");
    expectScope(fixture("syntax/valid/indent_block.tsk"), "# trailing comments stay", "#", "comment.line.number-sign.tusk");
});

test("strings, interpolation, triple quotes and backtick templates", () => {
    const templates = fixture("syntax/valid/template_backtick.tsk");
    expectScope(templates, 'slug: "spring-sale"', "spring", "string.quoted.double.tusk");
    expectScope(templates, "url: `/sales/", "/sales/", "string.template.tusk");
    expectScope(templates, "url: `/sales/", "slug", "meta.interpolation.tusk");
    expectScope(templates, "label: `${count + 1}", "count", "meta.embedded.expression.tusk");
    expectScope(templates, "label: `${count + 1}", "+", "keyword.operator.arithmetic.tusk");
    expectScope(templates, "label: `${count + 1}", "\\${", "constant.character.escape.tusk");
    expectScope(templates, "label: `${count + 1}", "items", "string.template.tusk");
    const triple = fixture("syntax/valid/triple_quoted_verbatim.tsk");
    expectScope(triple, "const url", "${item.id}", "string.quoted.triple.tusk");
    const interpolated = '$host = "example.com"\nurl = "https://${host}/api"\n';
    expectScope(interpolated, "url =", "${host}", "meta.interpolation.tusk");
    expectScope(interpolated, "url =", "https", "string.quoted.double.tusk");
    expectScope(interpolated, "url =", "host", "variable.other.readwrite.tusk");
    expectScope("a = 'no ${interp} here'\n", "a =", "interp", "string.quoted.single.tusk");
});

test("directives, variables, sections and keys", () => {
    const chains = fixture("syntax/valid/member_chain_runtime.tsk");
    expectScope(chains, "open_orders:", "@query", "support.function.directive.tusk");
    expectScope(chains, "open_orders:", "where", "entity.name.function.member.tusk");
    expectScope(chains, "trace:", "x-trace-id", "support.function.directive.tusk");
    const dotted = fixture("syntax/valid/foreign_directive_names.tsk");
    expectScope(dotted, "home = env(", "env", "support.function.directive.tusk");
    const members = fixture("syntax/valid/member_of_object.tsk");
    expectScope(members, "[shop]", "shop", "entity.name.section.tusk");
    expectScope(members, "[shop]", "[", "punctuation.definition.section.begin.tusk");
    expectScope(members, "$owner =", "$owner", "variable.other.readwrite.tusk");
    expectScope(members, "mobile:", "$owner", "variable.other.readwrite.tusk");
    expectScope(members, "mobile:", "mobile", "support.type.property-name.tusk");
    expectScope(members, 'address: { city: "Tartu"', "city", "support.type.property-name.tusk");
    expectScope(members, 'address: { city: "Tartu"', "zip", "support.type.property-name.tusk");
    const semicolons = fixture("syntax/valid/semicolon_members.tsk");
    expectScope(semicolons, "retries = 3; backoff", "backoff", "support.type.property-name.tusk");
    expectScope(semicolons, "limits { cpu", "limits", "support.type.property-name.tusk");
    expectScope(semicolons, "limits { cpu", "memory", "support.type.property-name.tusk");
    const dashes = fixture("syntax/valid/dash_list.tsk");
    expectScope(dashes, "- olives", "-", "punctuation.definition.list.begin.tusk");
    expectScope(dashes, '- "sun-dried tomato"', "sun", "string.quoted.double.tusk");
});

test("numbers, ranges and constants", () => {
    const text = fixture("syntax/valid/arithmetic_range_versus_subtraction.tsk");
    expectScope(text, "ports: 8000-9000", "8000-9000", "constant.numeric.range.tusk");
    expectScope(text, "ports: 8000-9000", "-", "keyword.operator.range.tusk");
    expectScope(text, "gap: 9000 - 8000", "9000", "constant.numeric.integer.decimal.tusk");
    assert.ok(!hasScope(scopesOf(text, "gap: 9000 - 8000", "9000"), ["constant.numeric.range.tusk"]));
    expectScope(text, "gap: 9000 - 8000", "-", "keyword.operator.arithmetic.tusk");
    expectScope(text, "floats: 2.5-1", "2.5", "constant.numeric.float.tusk");
    const numbers = "hex = 0x1F\nbig = 1_000\nsmall = 1e-3\nneg = -17\non = true\noff = false\nnone = null\n";
    expectScope(numbers, "hex =", "0x1F", "constant.numeric.integer.hexadecimal.tusk");
    expectScope(numbers, "big =", "1_000", "constant.numeric.integer.decimal.tusk");
    expectScope(numbers, "small =", "1e-3", "constant.numeric.float.tusk");
    expectScope(numbers, "neg =", "-17", "constant.numeric.integer.decimal.tusk");
    expectScope(numbers, "on =", "true", "constant.language.boolean.true.tusk");
    expectScope(numbers, "none =", "null", "constant.language.null.tusk");
    expectScope("x-null-name = 1\n", "x-null", "null", "support.type.property-name.tusk");
});

test("foreign code ends at its balancing parenthesis", () => {
    const text = fixture("syntax/valid/foreign_php.tsk");
    expectScope(text, "stamp: php(time())", "php", "entity.name.function.foreign.tusk");
    expectScope(text, "stamp: php(time())", "time", "meta.embedded.foreign.tusk");
    expectScope(text, "quoted: php(", "a ) inside", "string.quoted.double.tusk");
    expectScope(text, "quoted: php(", "and ) in a comment", "comment.block.tusk");
    expectScope(text, "<p>(an unbalanced paren", "unbalanced", "string.unquoted.heredoc.tusk");
    // after the heredoc's `)` the file is TuskLang again
    expectScope(text, "square: php(", "square", "support.type.property-name.tusk");
    const { depth } = tokenize(text);
    assert.equal(depth, 1);
});

function validFixtures() {
    const found = [];
    const walk = (dir) => {
        for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
            const full = path.join(dir, entry.name);
            if (entry.isDirectory()) walk(full);
            else if (entry.name.endsWith(".tsk")) found.push(full);
        }
    };
    for (const dir of ["valid", "syntax/valid", "seed", "typed", "delivery", "dashboard"]) {
        walk(path.join(FIXTURES, dir));
    }
    return found.sort();
}

test("every valid fixture tokenizes to the end and closes everything it opens", () => {
    const files = validFixtures();
    assert.ok(files.length > 100, `only ${files.length} fixtures found under ${FIXTURES}`);
    for (const file of files) {
        const { depth } = tokenize(fs.readFileSync(file, "utf8"));
        assert.equal(depth, 1, `${path.relative(FIXTURES, file)} ends inside an open construct`);
    }
});

test("the parser's places in every fixture it accepts", { skip: !process.env.TUSK_GRAMMAR_PLACES }, () => {
    const files = JSON.parse(fs.readFileSync(process.env.TUSK_GRAMMAR_PLACES, "utf8"));
    assert.ok(files.length > 150);
    const wrong = [];
    let checked = 0;
    for (const file of files) {
        const { tokens, depth } = tokenize(fs.readFileSync(file.path, "utf8"));
        if (depth !== 1) wrong.push(`${file.name}: ends inside an open construct`);
        for (const place of file.places) {
            const scopes = scopesAt(tokens, place.line, place.character);
            checked += 1;
            if (!hasScope(scopes, SCOPES[place.kind])) {
                wrong.push(`${file.name}:${place.line + 1}:${place.character + 1} ${place.kind} ` +
                    `${JSON.stringify(place.text.slice(0, 30))}: ${scopes.join(" ")}`);
            }
        }
    }
    assert.ok(checked > 3000, `only ${checked} places`);
    assert.deepEqual(wrong.slice(0, 10), []);
});
