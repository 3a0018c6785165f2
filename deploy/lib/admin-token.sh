# Sourced by the deploy scripts (not run on its own): reads the admin token from
# GATEHOUSE_ADMIN_TOKEN_FILE, else GATEHOUSE_ADMIN_TOKEN, into ADMIN_TOKEN (empty without one:
# nodes without a token answer loopback callers only). The sourcing script provides
# `die CODE MESSAGE`.
ADMIN_TOKEN=
if [[ -n ${GATEHOUSE_ADMIN_TOKEN_FILE:-} ]]; then
    ADMIN_TOKEN=$(<"$GATEHOUSE_ADMIN_TOKEN_FILE") || die 1 "cannot read GATEHOUSE_ADMIN_TOKEN_FILE=$GATEHOUSE_ADMIN_TOKEN_FILE"
elif [[ -n ${GATEHOUSE_ADMIN_TOKEN:-} ]]; then
    ADMIN_TOKEN=$GATEHOUSE_ADMIN_TOKEN
fi
