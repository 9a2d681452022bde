from shared_context_server.app import App
from shared_context_server.domain.principal import Principal


async def test_a_posted_message_can_be_read_back(app: App, alice: Principal) -> None:
    session = await app.sessions.create(alice, "smoke")
    message = await app.messages.add(alice, session.id, "hello")
    page = await app.messages.page(alice, session.id)
    assert [m.id for m in page.messages] == [message.id]
