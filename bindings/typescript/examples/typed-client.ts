// A small client written with the typed client, as a client team would write one. It is
// type-checked with the package (tsconfig.build.json), and test/type-drift.test.mjs shows that
// renaming a field it uses in the protocol makes it fail to compile, naming the field.

import { SignalboxClient, type ServerEnvelopeOf } from "../client/index.js";

export function chatBot(url: string, serverId: string): SignalboxClient {
  const client = new SignalboxClient({ url, identify: { displayName: "bot" } });

  client.on("server_users", (e) => {
    console.log(`${e.users.length} in ${e.serverId}:`, e.users.map((u) => u.displayName).join(", "));
  });
  client.on("user_joined", (e) => {
    client.send({ type: "chat_message", serverId, message: { text: `welcome, ${e.displayName}` } });
  });
  client.on("chat_message", (e: ServerEnvelopeOf<"chat_message">) => {
    console.log(`${e.senderName}: ${JSON.stringify(e.message)}`);
  });
  client.on("offer", (e) => {
    // A real client would answer with an RTCPeerConnection; the bot declines politely.
    client.send({ type: "direct-message", targetUserId: e.fromUserId, text: "I do not do WebRTC" });
  });
  client.on("error", (e) => console.error(e.code, e.message));

  client.send({ type: "join_server", serverId });
  return client.connect();
}
