// expect: TS2339 Property 'status' does not exist on type 'ChatMember'.
import type { Drizzle } from "drizzle-gateway-client";
import { typed } from "../generated/chat.js";

declare const dz: Drizzle;
const lobby = typed(dz).topics.chat({ room: "lobby" });
await lobby.subscribe(() => {}, { onJoin: (member) => console.log(member.status) });
