"""Browser glue for one streamed chat request: POST it, read its Server-Sent Events as they
arrive (parsed by chat.py), and stop it with an AbortController. Imports `js`."""

import json

import chat
import js


class ChatStream:
    def __init__(self):
        self.controller = js.AbortController.new()
        self.response = None

    def stop(self) -> None:
        self.controller.abort()

    @property
    def aborted(self) -> bool:
        return bool(self.controller.signal.aborted)

    async def open(self, path, token, body_text, extra=()):
        """Send the request (`extra`: more (name, value) headers): (200, None) when the stream
        starts, else (status, error body); status 0 when nothing reached the relay (network
        error, or stopped)."""
        headers = js.Headers.new()
        headers.set("Authorization", "Bearer " + token)
        headers.set("Content-Type", "application/json")
        for name, value in extra:
            headers.set(name, value)
        options = js.Object.new()
        options.method = "POST"
        options.headers = headers
        options.body = body_text
        options.signal = self.controller.signal
        try:
            response = await js.fetch(path, options)
        except Exception as error:  # a JS TypeError (network) or AbortError (Stop)
            return 0, {"message": str(error)}
        status = int(response.status)
        if status != 200:
            text = str(await response.text())
            try:
                data = json.loads(text)
            except ValueError:
                data = {"message": text[:300]}
            return status, data
        self.response = response
        return 200, None

    async def read(self, reply, on_text, every_ms=60):
        """Read to the end (or Stop) into `reply` (chat.Reply or one with its face, which reads
        the provider's events), calling `on_text(reply)` at most every `every_ms` while text
        arrives. Returns (reply, stopped, failure text or None)."""
        reader = self.response.body.getReader()
        decoder = js.TextDecoder.new()
        stream_option = js.JSON.parse('{"stream": true}')
        parser = chat.SSEParser()
        last = 0
        stopped, failure = False, None
        try:
            while True:
                result = await reader.read()
                if result.done:
                    break
                for data in parser.feed(str(decoder.decode(result.value, stream_option))):
                    reply.add(data)
                now = int(js.Date.now())
                if now - last >= every_ms:
                    last = now
                    on_text(reply)
        except Exception as error:  # the reader rejects on Stop (AbortError) or a broken stream
            if self.aborted:
                stopped = True
            else:
                failure = str(error)
        return reply, stopped, failure
