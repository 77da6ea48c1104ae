// expect: TS2339 Property 'sent_at' does not exist on type '{ text: string; }'.
import type { Drizzle } from "drizzle-gateway-client";
import { typed } from "../generated/chat.js";

declare const dz: Drizzle;
await typed(dz).topics.chat({ room: "lobby" }).subscribe((message) => console.log(message.sent_at), {
  fields: ["text"],
});
