// The sample app in a browser page: the chat example through typed(dz), drizzle.js from the gateway.
//
// The page maps the bare specifier "drizzle-gateway-client" to the gateway's /drizzle.js with an
// import map, and shows what it got in document.body.dataset.result (or dataset.error).
import { Drizzle } from "drizzle-gateway-client";
import { typed } from "../generated/chat.js";
import type { ChatMessage } from "../generated/chat.js";

async function tour(): Promise<Record<string, unknown>> {
  const dz = await Drizzle.connect(`ws://${location.host}/ws`);
  const chat = typed(dz);
  const room = chat.topics.chat({ room: "browser" });
  let heard!: (data: Pick<ChatMessage, "author" | "text">) => void;
  const event = new Promise<Pick<ChatMessage, "author" | "text">>((resolve) => { heard = resolve; });
  await room.subscribe((data) => heard(data), { fields: ["author", "text"] });
  const said = await chat.rooms.say({ room: "browser", author: "ada", text: "from a browser" });
  const sentAt: string = said.sent_at;
  const history = await chat.rooms.history({ room: "browser" }, { fields: ["text"] });
  const texts: string[] = history.map((message) => message.text);
  dz.close();
  return { said, sentAt, event: await event, texts };
}

tour().then(
  (result) => { document.body.dataset.result = JSON.stringify(result); },
  (error: unknown) => { document.body.dataset.error = String(error); },
);
