import tornado.ioloop
import tornado.web
from tornado_drizzle.drizzle_web_socket import DrizzleWebSocket, DrizzleHandler
from tornado import gen
from tornado_drizzle.conf import init_drizzle


class ResourceHandler(DrizzleHandler):

    @gen.coroutine
    def get(self, message):
        return {"key": "val"}


def make_app():

    application = tornado.web.Application(
        [
            (r"/ws", DrizzleWebSocket),
        ],
        autoreload=True
    )
    return application


if __name__ == "__main__":
    app = make_app()
    app.listen(8888)
    drizzle_handler_routes = {
        'login': ResourceHandler
    }
    ioloop = tornado.ioloop.IOLoop.current()
    init_drizzle(app, drizzle_handler_routes, ioloop)
    tornado.ioloop.IOLoop.current().start()
