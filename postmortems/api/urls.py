from rest_framework.routers import SimpleRouter

from . import views

app_name = "postmortems-api"

router = SimpleRouter()
router.register("postmortems", views.PostMortemViewSet, basename="postmortem")

urlpatterns = router.urls
