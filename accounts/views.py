"""Server-rendered pages: log in, sign up, log out."""

from __future__ import annotations

import math

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.shortcuts import redirect
from django.urls import reverse_lazy
from django.views.generic import FormView

from accounts.forms import EmailAuthenticationForm, RegistrationForm
from accounts.throttling import RegistrationRateThrottle, login_attempt_wait


class LoginView(auth_views.LoginView):
    """Django's login page, by email, sharing the API's per-IP and per-email attempt limit."""

    template_name = "accounts/login.html"
    authentication_form = EmailAuthenticationForm
    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        wait = login_attempt_wait(request)
        if wait is None:
            return super().post(request, *args, **kwargs)
        # Over the limit: answer without checking the password at all.
        form = self.get_form_class()(request, initial={"username": request.POST.get("username", "")})
        context = self.get_context_data(form=form, throttle_wait_seconds=math.ceil(wait))
        return self.render_to_response(context, status=429)


class RegisterView(FormView):
    """Sign up, then arrive on the dashboard already logged in."""

    template_name = "accounts/register.html"
    form_class = RegistrationForm
    success_url = reverse_lazy("dashboard")

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            return redirect(self.success_url)
        return super().dispatch(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        throttle = RegistrationRateThrottle()
        if not throttle.allow_request(request, view=None):
            context = self.get_context_data(throttle_wait_seconds=math.ceil(throttle.wait() or 0))
            return self.render_to_response(context, status=429)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form):
        user = form.save()
        login(self.request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(self.request, "Welcome to Sightline. Your account is ready.")
        return super().form_valid(form)


class LogoutView(auth_views.LogoutView):
    """POST only (Django's LogoutView refuses GET), back to the login page."""

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        messages.info(request, "You have been logged out.")
        return response

