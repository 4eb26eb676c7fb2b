/**
 * Cutting managedFields out of watch event text, on real events: kube-apiserver 1.33's watch streams of a bench
 * burst (testdata/watch-events-1.33.jsonl: a pod and a Job of each stage, a FineTuneJob, a claim, a ConfigMap,
 * Events), the bytes as the server wrote them.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parseObjectWithoutManagedFields, parseWatchLine, withoutManagedFields } from "./watch-text.ts";

type Event = { type: string; object: { kind: string; metadata: Record<string, unknown> & { managedFields?: unknown[] } } };

const lines = readFileSync(new URL("./testdata/watch-events-1.33.jsonl", import.meta.url), "utf8")
  .split("\n")
  .filter(Boolean);
const withoutFields = (line: string): Event => {
  const event = JSON.parse(line) as Event;
  delete event.object.metadata.managedFields;
  return event;
};

describe("managedFields cut out of watch event text", () => {
  it("the fixture covers every kind the informers watch, each with managedFields", () => {
    const kinds = new Set(lines.map((l) => (JSON.parse(l) as Event).object.kind));
    assert.deepEqual([...kinds].sort(), ["ConfigMap", "Event", "FineTuneJob", "Job", "PersistentVolumeClaim", "Pod"]);
    for (const l of lines) assert.ok(((JSON.parse(l) as Event).object.metadata.managedFields ?? []).length > 0);
  });

  it("gives each real event as parsing it whole and dropping managedFields would, from much shorter text", () => {
    for (const line of lines) {
      const cut = withoutManagedFields(line);
      const kind = (JSON.parse(line) as Event).object.kind;
      assert.ok(cut.length < line.length, `${kind}: cut`);
      assert.deepEqual(JSON.parse(cut), withoutFields(line), kind);
      assert.deepEqual(parseWatchLine(line, true), withoutFields(line), kind);
    }
    const share = (kind: string) => {
      const of = lines.filter((l) => (JSON.parse(l) as Event).object.kind === kind);
      const cut = of.reduce((n, l) => n + withoutManagedFields(l).length, 0);
      return 1 - cut / of.reduce((n, l) => n + l.length, 0);
    };
    // The saving this is for: about 40 % of pod and Job events.
    assert.ok(share("Pod") > 0.35, `pods ${share("Pod")}`);
    assert.ok(share("Job") > 0.35, `Jobs ${share("Job")}`);
  });

  it("keeps managedFields unless asked, and leaves text without them alone", () => {
    for (const line of lines) assert.deepEqual(parseWatchLine(line, false), JSON.parse(line));
    const bare = JSON.stringify(withoutFields(lines[0]!));
    assert.equal(withoutManagedFields(bare), bare);
    const bookmark = '{"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"12"}}}';
    assert.deepEqual(parseWatchLine(bookmark, true), JSON.parse(bookmark));
  });

  it('parses the whole line when a "}]" inside a string ends the cut early (an env var named so)', () => {
    const pod = lines.find((l) => (JSON.parse(l) as Event).object.kind === "Pod" && l.includes('k:{\\"name\\":\\"'))!;
    // The env var's name is in the spec and in the job controller's managedFields key for that list item.
    const envName = /k:\{\\"name\\":\\"([A-Z_]+)\\"\}/.exec(pod)![1]!;
    for (const odd of ["A}],B", "A}]}B"]) {
      const line = pod.replaceAll(`\\"${envName}\\"`, `\\"${odd}\\"`).replaceAll(`"name":"${envName}"`, `"name":"${odd}"`);
      assert.ok(line.includes(`${odd}\\"}`), "the odd name is in managedFields");
      const cut = withoutManagedFields(line);
      assert.notEqual(cut, line, "the cut stops inside the string");
      assert.throws(() => JSON.parse(cut), SyntaxError);
      const event = parseWatchLine(line, true) as Event;
      assert.deepEqual(event, withoutFields(line));
      assert.equal(event.object.metadata.managedFields, undefined);
    }
  });

  it("leaves a managedFields key in spec alone when metadata has none (a custom resource's free-form config)", () => {
    const ftj = JSON.parse(lines.find((l) => (JSON.parse(l) as Event).object.kind === "FineTuneJob")!) as Event & {
      object: { spec: { config: Record<string, unknown> } };
    };
    delete ftj.object.metadata.managedFields;
    ftj.object.spec.config["managedFields"] = [{ manager: "someone", fieldsV1: { a: 1 } }];
    ftj.object.spec.config["zz"] = [{ b: 2 }];
    const line = JSON.stringify(ftj);
    assert.equal(withoutManagedFields(line), line);
    assert.deepEqual(parseWatchLine(line, true), ftj);
  });

  it("throws for a line that is not JSON, cut or not", () => {
    assert.throws(() => parseWatchLine('{"type":"ADDED","object":{"metadata":{"name":"a","managedFields":[{"x":1}]}', true), SyntaxError);
    assert.throws(() => parseWatchLine("not json", true), SyntaxError);
  });

  it("parses an API answer's object (the same bytes as the event's object) without managedFields", () => {
    for (const line of lines) {
      // A watch event is {"type":...,"object":<the object as the API server writes it in answers>}.
      const text = line.slice(line.indexOf('"object":') + '"object":'.length, -1);
      const kind = (JSON.parse(line) as Event).object.kind;
      assert.deepEqual(parseObjectWithoutManagedFields(text), withoutFields(line).object, kind);
      assert.ok(withoutManagedFields(text).length < text.length, `${kind}: cut`);
    }
    const pod = lines.find((l) => (JSON.parse(l) as Event).object.kind === "Pod" && l.includes('k:{\\"name\\":\\"'))!;
    const envName = /k:\{\\"name\\":\\"([A-Z_]+)\\"\}/.exec(pod)![1]!;
    const odd = pod.replaceAll(`\\"${envName}\\"`, `\\"A}],B\\"`).replaceAll(`"name":"${envName}"`, `"name":"A}],B"`);
    const text = odd.slice(odd.indexOf('"object":') + '"object":'.length, -1);
    assert.throws(() => JSON.parse(withoutManagedFields(text)), SyntaxError);
    assert.deepEqual(parseObjectWithoutManagedFields(text), withoutFields(odd).object, "a cut that is not JSON: the whole text");
  });
});
