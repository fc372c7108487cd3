from django.shortcuts import render

from audit import selectors
from audit.forms import AuditFilterForm
from audit.models import AuditEvent
from govsite.accounts import permissions
from govsite.web import paginate, role_required


@role_required(permissions.can_view_audit_log, "Only admins and auditors can read the audit log.")
def audit_log(request):
    form = AuditFilterForm(request.GET or None)
    events = AuditEvent.objects.none()
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        events = selectors.audit_event_list(
            user=request.user,
            actor=data["actor"],
            action=data["action"],
            team_id=data["team"].pk if data["team"] else None,
            date_from=data["date_from"],
            date_to=data["date_to"],
        )
    elif not form.is_bound:
        events = selectors.audit_event_list(user=request.user)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "audit/log.html",
        {
            "form": form,
            "page": paginate(request, events, per_page=50),
            "query": query.urlencode(),
            "actions": selectors.audit_actions(),
        },
    )
