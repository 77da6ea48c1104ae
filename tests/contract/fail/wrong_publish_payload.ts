// expect: TS2345 Property 'author' is missing in type '{ text: string; }' but required in type 'ChatMessageInput'.
import type { Drizzle } from "drizzle-gateway-client";
import { typed } from "../generated/chat.js";

declare const dz: Drizzle;
await typed(dz).topics.chat({ room: "lobby" }).publish({ text: "hi" });
