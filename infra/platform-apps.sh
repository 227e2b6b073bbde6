#!/usr/bin/env bash
# Creates (or updates) the SNS platform applications ChatSecure Push sends
# through, and prints the ARNs to pass to `sam deploy`.
#
# CloudFormation has no resource for SNS platform applications, so this script
# does it with the AWS CLI. Run it again to rotate a key: it updates the
# existing application in place (same ARN, no redeploy needed).
#
#   infra/platform-apps.sh \
#     --name chatsecure-push \
#     --apns-key AuthKey_ABCDE12345.p8 --key-id ABCDE12345 \
#     --team-id TEAMID1234 --bundle-id org.chatsecure.ChatSecure \
#     [--sandbox] [--fcm-service-account firebase-adminsdk.json] \
#     [--events-topic arn:aws:sns:REGION:ACCOUNT:TOPIC] [--region REGION]
#
# --sandbox           development builds (APNS_SANDBOX); default production (APNS)
# --events-topic      SNS topic for EventDeliveryFailure, EventEndpointUpdated and
#                     EventEndpointDeleted (where SNS reports dead tokens)
# --region            the stack's region; default AWS_REGION, then AWS_DEFAULT_REGION
# The AWS CLI's usual configuration applies (AWS_PROFILE, credentials, ...).
# Any AWS error stops the script with a non-zero exit and the CLI's message.
set -euo pipefail
# A failure inside $(...) stops the script too.
shopt -s inherit_errexit

name="" apns_key="" key_id="" team_id="" bundle_id="" sandbox=0 fcm="" topic="" region=""
while [ $# -gt 0 ]; do
  case "$1" in
    --name) name=$2; shift 2 ;;
    --apns-key) apns_key=$2; shift 2 ;;
    --key-id) key_id=$2; shift 2 ;;
    --team-id) team_id=$2; shift 2 ;;
    --bundle-id) bundle_id=$2; shift 2 ;;
    --sandbox) sandbox=1; shift ;;
    --fcm-service-account) fcm=$2; shift 2 ;;
    --events-topic) topic=$2; shift 2 ;;
    --region) region=$2; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
for required in name apns_key key_id team_id bundle_id; do
  if [ -z "${!required}" ]; then
    echo "missing --${required//_/-} (see --help)" >&2
    exit 2
  fi
done
[ -r "$apns_key" ] || { echo "cannot read the APNs key $apns_key" >&2; exit 2; }
[ -z "$fcm" ] || [ -r "$fcm" ] || { echo "cannot read the FCM service account $fcm" >&2; exit 2; }
command -v aws >/dev/null || { echo "the AWS CLI (aws) is required" >&2; exit 2; }
# The CLI from `make deploy-tools` (v1) reads AWS_DEFAULT_REGION only, so the
# region is always passed explicitly.
region=${region:-${AWS_REGION:-${AWS_DEFAULT_REGION:-}}}
[ -n "$region" ] || { echo "no region: pass --region or set AWS_REGION" >&2; exit 2; }

fail() {
  echo "platform-apps: $*" >&2
  exit 1
}

awscli() {
  aws --region "$region" "$@" || fail "aws $1 $2 failed (see the message above)"
}

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT

# attributes_file OUT KEY=FILE|KEY=VALUE... : a JSON attributes map; values
# given as @path are read from that file (keys stay out of argv and logs).
attributes_file() {
  local out=$1; shift
  python3 - "$out" "$@" <<'PY'
import json, sys
out, pairs = sys.argv[1], sys.argv[2:]
attrs = {}
for pair in pairs:
    key, value = pair.split("=", 1)
    if value.startswith("@"):
        value = open(value[1:]).read()
    if value:
        attrs[key] = value
json.dump(attrs, open(out, "w"))
PY
}

events=()
if [ -n "$topic" ]; then
  events=("EventDeliveryFailure=$topic" "EventEndpointUpdated=$topic" "EventEndpointDeleted=$topic")
fi

# ensure_app NAME PLATFORM ATTRIBUTES_FILE: prints the application's ARN.
ensure_app() {
  local app_name=$1 platform=$2 attrs=$3 arn
  local existing
  existing=$(awscli sns list-platform-applications --query "PlatformApplications[].PlatformApplicationArn" --output text)
  arn=$(printf '%s\n' "$existing" | tr '\t' '\n' | grep -E ":app/$platform/$app_name\$" || true)
  if [ -n "$arn" ]; then
    awscli sns set-platform-application-attributes --platform-application-arn "$arn" --attributes "file://$attrs" >/dev/null
    echo "updated $arn" >&2
  else
    arn=$(awscli sns create-platform-application --name "$app_name" --platform "$platform" \
      --attributes "file://$attrs" --query PlatformApplicationArn --output text)
    [[ "$arn" == arn:*":app/$platform/$app_name" ]] || fail "creating $app_name returned no ARN (got \"$arn\")"
    echo "created $arn" >&2
  fi
  echo "$arn"
}

apns_platform=APNS
[ "$sandbox" = 1 ] && apns_platform=APNS_SANDBOX
attributes_file "$workdir/apns.json" \
  "PlatformCredential=@$apns_key" "PlatformPrincipal=$key_id" \
  "ApplePlatformTeamID=$team_id" "ApplePlatformBundleID=$bundle_id" "${events[@]}"
apns_arn=$(ensure_app "$name-apns" "$apns_platform" "$workdir/apns.json")

gcm_arn=""
if [ -n "$fcm" ]; then
  attributes_file "$workdir/gcm.json" "PlatformCredential=@$fcm" "${events[@]}"
  gcm_arn=$(ensure_app "$name-fcm" GCM "$workdir/gcm.json")
fi

echo
echo "Pass these to sam deploy:"
echo "  --parameter-overrides ApnsPlatformApplicationArn=$apns_arn${gcm_arn:+ GcmPlatformApplicationArn=$gcm_arn}"
