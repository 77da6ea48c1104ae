// A sample TypeScript app on the generated types: the todo and chat examples through typed(dz).
//
//     node dist/app/main.js TODO_WS_URL CHAT_WS_URL REPLIES_JSON
//
// (node 22; node 20.10 and later need --experimental-websocket for its global WebSocket)
//
// It uses every action of both examples and one subscription of each, and writes every reply
// and event it got to REPLIES_JSON as {module, member, fields, value}: the test checks each
// value, as it came from the wire, against the type the generated module gives it.
import { writeFileSync } from "node:fs";
import { Drizzle, DrizzleError } from "drizzle-gateway-client";
import { typed as typedChat } from "../generated/chat.js";
import type { ChatMessage } from "../generated/chat.js";
import { typed as typedTodo } from "../generated/todo.js";
import type { Todo } from "../generated/todo.js";

interface Seen {
  module: "todo" | "chat";
  member: [string, string];
  fields: readonly string[] | null;
  value: unknown;
  /** an item of a streaming action */
  stream: boolean;
}

const [todoUrl, chatUrl, out] = process.argv.slice(2);
const seen: Seen[] = [];
const note = <T>(module: Seen["module"], member: [string, string], fields: readonly string[] | null, value: T,
  stream = false): T => {
  seen.push({ module, member, fields, value, stream });
  return value;
};

function nextEvent<T>(): { wait: Promise<T>; handler: (data: T) => void } {
  let handler!: (data: T) => void;
  const wait = new Promise<T>((resolve) => { handler = resolve; });
  return { wait, handler };
}

// -- the todo example --------------------------------------------------------------
const todoClient = await Drizzle.connect(todoUrl);
const todo = typedTodo(todoClient);

const event = nextEvent<Pick<Todo, "id" | "title">>();
await todo.topics.todos().subscribe((data) => event.handler(data), { fields: ["id", "title"] });

const created = note("todo", ["todos", "create"], null, await todo.todos.create({ title: "milk" }));
const createdId: number = created.id;
const ownerName: string = created.owner.name;

const heard = note("todo", ["topics", "todos"], ["id", "title"], await event.wait);
if (heard.id !== createdId) throw new Error(`event for ${heard.id}, expected ${createdId}`);

const fields = ["id", "owner.name"] as const;
const picked = note("todo", ["todos", "get"], fields, await todo.todos.get({ id: createdId }, { fields }));
const pickedName: string = picked.owner.name;
if (pickedName !== ownerName) throw new Error("owner.name differs");

note("todo", ["todos", "update"], null, await todo.todos.update({ id: createdId, done: true }));
const listed = note("todo", ["todos", "list"], ["title", "done"],
  await todo.todos.list(undefined, { fields: ["title", "done"] }));
const titles: string[] = listed.map((item) => item.title);
note("todo", ["todos", "watch"], null, await todo.todos.watch());

const found: Array<Pick<Todo, "id" | "title">> = [];
for await (const item of todo.todos.search({ q: "MIL" }, { fields: ["id", "title"] })) {
  found.push(note("todo", ["todos", "search"], ["id", "title"], item, true));
}
if (found.length !== 1 || found[0].id !== createdId) throw new Error(`search found ${JSON.stringify(found)}`);
for await (const item of todo.todos.search({})) {
  const doneFlag: boolean = item.done;
  if (doneFlag !== true) throw new Error("the updated todo is done");
  break; // cancels the stream
}

try {
  await todo.todos.get({ id: 999 });
  throw new Error("expected NOT_FOUND");
} catch (error) {
  if (!(error instanceof DrizzleError) || error.code !== "NOT_FOUND") throw error;
}
todoClient.close();

// -- the chat example --------------------------------------------------------------
const chatClient = await Drizzle.connect(chatUrl);
const chat = typedChat(chatClient);
const lobby = chat.topics.chat({ room: "lobby" });

const message = nextEvent<Pick<ChatMessage, "author" | "text">>();
const subscription = await lobby.subscribe((data) => message.handler(data), { fields: ["author", "text"] });
note("chat", ["rooms", "say"], null, await chat.rooms.say({ room: "lobby", author: "ada", text: "hello" }));
note("chat", ["topics", "chat"], ["author", "text"], await message.wait);

const published = nextEvent<ChatMessage>();
const everything = await lobby.subscribe((data) => published.handler(data));
await lobby.publish({ author: "bob", text: "hi ada" });
note("chat", ["topics", "chat"], null, await published.wait);
note("chat", ["rooms", "history"], null, await chat.rooms.history({ room: "lobby" }));
await subscription.unsubscribe();
await everything.unsubscribe();

// presence: this connection's entry, its own join (member cut to memberFields), the list
const joined = nextEvent<{ name: string; key: string }>();
const present = await lobby.subscribe(() => {}, {
  presence: { name: "ada" },
  memberFields: ["name"],
  onJoin: (member, meta) => joined.handler({ name: member.name, key: meta.key }),
});
const me = await joined.wait;
if (me.name !== "ada" || me.key !== "ada") throw new Error(`joined as ${JSON.stringify(me)}`);
const members = await lobby.presence({ fields: ["name"] });
const names: string[] = members.map((entry) => entry.member.name);
const connections: number = members[0].connections;
if (names.join() !== "ada" || connections !== 1) throw new Error(`members ${JSON.stringify(members)}`);
await present.unsubscribe();
chatClient.close();

writeFileSync(out, JSON.stringify(seen, null, 1));
console.log(`ok: ${seen.length} replies and events, titles ${JSON.stringify(titles)}`);
